// verbs/xdp/xdp_csum.h — the software checksum a device without NETIF_F_*_CSUM needs.
// kernel: csum_partial(), csum_fold(), skb_checksum_help() (net/core/dev.c), ip_send_check().
// Byte-wise, unaligned-safe; to be replaced by stack/base's checksum module once it exists.
#pragma once

#include <cstddef>
#include <cstdint>

namespace xmit::xdp {

// Ones'-complement sum of `len` bytes read as big-endian 16-bit words, added to `sum`.
// `odd` says the buffer starts at an odd offset of the summed region (its first byte is a low byte).
inline uint32_t csum_partial(const uint8_t* p, size_t len, uint32_t sum, bool odd = false) {
  uint64_t s = sum;
  size_t i = 0;
  if (odd && len > 0) {
    s += p[0];
    i = 1;
  }
  for (; i + 1 < len; i += 2) s += (uint32_t(p[i]) << 8) | p[i + 1];
  if (i < len) s += uint32_t(p[i]) << 8;
  while (s >> 32) s = (s & 0xffffffffu) + (s >> 32);
  return uint32_t(s);
}

// Folds a 32-bit partial sum to 16 bits and complements it: the value to store in a header.
inline uint16_t csum_fold(uint32_t sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}

inline void put_be16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}

// kernel: csum_tcpudp_nofold(); addresses in network byte order as they sit in the header.
inline uint32_t csum_tcpudp_nofold(const uint8_t saddr[4], const uint8_t daddr[4], uint16_t len,
                                   uint8_t proto, uint32_t sum) {
  uint64_t s = uint64_t(csum_partial(daddr, 4, csum_partial(saddr, 4, sum))) + proto + len;
  while (s >> 32) s = (s & 0xffffffffu) + (s >> 32);
  return uint32_t(s);
}

}  // namespace xmit::xdp
