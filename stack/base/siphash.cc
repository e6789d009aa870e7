// stack/base/siphash.cc — see siphash.h (kernel: lib/siphash.c, PREAMBLE/SIPROUND/POSTAMBLE).
#include "stack/base/siphash.h"

namespace xmit {

namespace {

constexpr uint64_t rol64(uint64_t w, int s) { return (w << s) | (w >> (64 - s)); }

// kernel: SIPHASH_PERMUTATION()
struct SipState {
  uint64_t v0, v1, v2, v3;
  void round() {
    v0 += v1, v1 = rol64(v1, 13), v1 ^= v0, v0 = rol64(v0, 32);
    v2 += v3, v3 = rol64(v3, 16), v3 ^= v2;
    v0 += v3, v3 = rol64(v3, 21), v3 ^= v0;
    v2 += v1, v1 = rol64(v1, 17), v1 ^= v2, v2 = rol64(v2, 32);
  }
  void compress(uint64_t m) {  // two rounds per 8-byte word: SipHash-2-4
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
};

}  // namespace

uint64_t siphash_2u64(uint64_t first, uint64_t second, const siphash_key_t* key) {
  // PREAMBLE(16)
  SipState s{0x736f6d6570736575ull ^ key->key[0], 0x646f72616e646f6dull ^ key->key[1],
             0x6c7967656e657261ull ^ key->key[0], 0x7465646279746573ull ^ key->key[1]};
  const uint64_t b = uint64_t{16} << 56;
  s.compress(first);
  s.compress(second);
  // POSTAMBLE: the length word, then four finalisation rounds.
  s.compress(b);
  s.v2 ^= 0xff;
  s.round();
  s.round();
  s.round();
  s.round();
  return (s.v0 ^ s.v1) ^ (s.v2 ^ s.v3);
}

}  // namespace xmit
