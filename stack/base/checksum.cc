// stack/base/checksum.cc — csum_partial() and the helpers built on it.
// Kernel counterpart: lib/checksum.c (do_csum(), csum_partial(), ip_compute_csum()).
#include "stack/base/checksum.h"

#include <cstring>

namespace xmit {
namespace {

// Adds with end-around carry. kernel: the adc loops of arch csum_partial().
inline uint64_t add64(uint64_t a, uint64_t b) {
  uint64_t r = a + b;
  return r + (r < b);
}

// kernel: from64to32(), lib/checksum.c
inline uint32_t from64to32(uint64_t x) {
  x = (x & 0xffffffff) + (x >> 32);
  x = (x & 0xffffffff) + (x >> 32);
  return static_cast<uint32_t>(x);
}

}  // namespace

// The bytes are summed as native 64-bit words loaded with memcpy, so the address alignment does
// not matter: the result is the sum relative to `buff`, which is what the kernel's do_csum() gets
// by swapping the result when the buffer starts at an odd address. An odd tail byte lands in the
// low-address lane of its 16-bit word, as in do_csum().
wsum csum_partial(const void* buff, size_t len, wsum sum) noexcept {
  const auto* p = static_cast<const uint8_t*>(buff);
  uint64_t acc = 0;
  while (len >= 32) {
    uint64_t w[4];
    std::memcpy(w, p, sizeof w);
    acc = add64(acc, w[0]);
    acc = add64(acc, w[1]);
    acc = add64(acc, w[2]);
    acc = add64(acc, w[3]);
    p += 32;
    len -= 32;
  }
  while (len >= 8) {
    uint64_t w;
    std::memcpy(&w, p, sizeof w);
    acc = add64(acc, w);
    p += 8;
    len -= 8;
  }
  if (len > 0) {
    uint64_t w = 0;  // the tail, zero-padded in the same memory lanes
    std::memcpy(&w, p, len);
    acc = add64(acc, w);
  }
  return csum_add(from64to32(acc), sum);
}

wsum csum_partial_copy_nocheck(const void* src, void* dst, size_t len) noexcept {
  std::memcpy(dst, src, len);
  return csum_partial(dst, len, 0);
}

sum16 ip_fast_csum(const void* iph, unsigned ihl) noexcept {
  return csum_fold(csum_partial(iph, static_cast<size_t>(ihl) * 4, 0));
}

sum16 ip_compute_csum(const void* buff, size_t len) noexcept {
  return csum_fold(csum_partial(buff, len, 0));
}

}  // namespace xmit
