// stack/base/siphash.h — SipHash-2-4, the keyed PRF the kernel hashes its secrets with
// (include/linux/siphash.h, lib/siphash.c): siphash_2u64() and siphash_4u32(), bit for bit.
#pragma once

#include <cstdint>

namespace xmit {

// kernel: siphash_key_t — 128 bits of secret.
struct siphash_key_t {
  uint64_t key[2] = {0, 0};
};

// kernel: siphash_2u64() — the 16-byte message first | second (little-endian words).
uint64_t siphash_2u64(uint64_t first, uint64_t second, const siphash_key_t* key);

// kernel: siphash_4u32() — the 16-byte message a | b | c | d.
inline uint64_t siphash_4u32(uint32_t a, uint32_t b, uint32_t c, uint32_t d, const siphash_key_t* key) {
  return siphash_2u64(uint64_t{b} << 32 | a, uint64_t{d} << 32 | c, key);
}

}  // namespace xmit
