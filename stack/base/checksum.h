// stack/base/checksum.h — the Internet checksum (RFC 1071) with the kernel's names and value
// representation. Kernel counterparts: lib/checksum.c, include/net/checksum.h, include/asm-generic/checksum.h.
#pragma once

// Representation, exactly as the kernel's: a partial sum (`wsum`, kernel __wsum) is a 32-bit
// one's-complement sum of the bytes read as *native* 16-bit words from an even offset, so storing a
// folded `sum16` (kernel __sum16) with a plain memcpy puts the right bytes on the wire, on any
// host. Addresses are passed as they sit in the packet (be32); lengths and protocol in host order.
// Partial sums are only meaningful modulo 0xffff: two implementations may return different 32-bit
// values that fold to the same checksum; compare folded values.

#include <cstddef>
#include <cstdint>

#include "stack/base/byteorder.h"

namespace xmit {

using wsum = uint32_t;   // kernel: __wsum
using sum16 = uint16_t;  // kernel: __sum16, stored into a header without a byte swap

// kernel: CSUM_MANGLED_0, include/net/checksum.h — how a computed UDP checksum of 0 is sent.
inline constexpr sum16 CSUM_MANGLED_0 = 0xffff;

// One's-complement sum of `len` bytes at `buff` (any alignment, any length, odd included) added
// to `sum`. kernel: csum_partial(), lib/checksum.c
wsum csum_partial(const void* buff, size_t len, wsum sum) noexcept;

// Copies `len` bytes and returns their partial sum. kernel: csum_partial_copy_nocheck()
wsum csum_partial_copy_nocheck(const void* src, void* dst, size_t len) noexcept;

// kernel: csum_add(), include/net/checksum.h
constexpr wsum csum_add(wsum csum, wsum addend) {
  uint32_t res = csum + addend;
  return res + (res < addend);
}

// kernel: csum_sub(), include/net/checksum.h
constexpr wsum csum_sub(wsum csum, wsum addend) { return csum_add(csum, ~addend); }

// Folds a 32-bit partial sum to 16 bits and complements it. kernel: csum_fold(), asm-generic/checksum.h
constexpr sum16 csum_fold(wsum csum) {
  uint32_t sum = csum;
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<sum16>(~sum);
}

// kernel: csum_unfold(), include/net/checksum.h
constexpr wsum csum_unfold(sum16 n) { return n; }

// A partial sum computed from an odd offset has its bytes in the other lanes of the 16-bit words:
// rotate it by 8 to align it with a 16-bit boundary. kernel: csum_shift(), include/net/checksum.h
constexpr wsum csum_shift(wsum sum, size_t offset) {
  return (offset & 1) ? ((sum >> 8) | (sum << 24)) : sum;
}

// Adds the partial sum `csum2` of a block that starts `offset` bytes into the data whose sum is
// `csum`. kernel: csum_block_add(), include/net/checksum.h
constexpr wsum csum_block_add(wsum csum, wsum csum2, size_t offset) {
  return csum_add(csum, csum_shift(csum2, offset));
}

// kernel: csum_block_sub(), include/net/checksum.h
constexpr wsum csum_block_sub(wsum csum, wsum csum2, size_t offset) {
  return csum_block_add(csum, ~csum2, offset);
}

// Checksum of an IPv4 header of `ihl` 32-bit words; 0 when verifying a correct header.
// kernel: ip_fast_csum(), asm-generic/checksum.h
sum16 ip_fast_csum(const void* iph, unsigned ihl) noexcept;

// Folded checksum of a whole buffer (ICMP). kernel: ip_compute_csum(), lib/checksum.c
sum16 ip_compute_csum(const void* buff, size_t len) noexcept;

// Adds the IPv4 pseudo-header (RFC 768, RFC 793 §3.1) to `sum`; this unfolded value is what a
// device that finishes the checksum (CHECKSUM_PARTIAL) is seeded with.
// kernel: csum_tcpudp_nofold(), lib/checksum.c
constexpr wsum csum_tcpudp_nofold(be32 saddr, be32 daddr, uint32_t len, uint8_t proto, wsum sum) {
  uint64_t s = sum;
  s += saddr;
  s += daddr;
  if constexpr (std::endian::native == std::endian::big) {
    s += proto + len;
  } else {
    s += static_cast<uint64_t>(proto + len) << 8;
  }
  // kernel: from64to32()
  s = (s & 0xffffffff) + (s >> 32);
  s = (s & 0xffffffff) + (s >> 32);
  return static_cast<wsum>(s);
}

// kernel: csum_tcpudp_magic(), include/asm-generic/checksum.h
constexpr sum16 csum_tcpudp_magic(be32 saddr, be32 daddr, uint32_t len, uint8_t proto, wsum sum) {
  return csum_fold(csum_tcpudp_nofold(saddr, daddr, len, proto, sum));
}

// RFC 768: a computed UDP checksum of zero is transmitted as all ones (zero means "none").
// kernel: udp_send_skb(), net/ipv4/udp.c ("if (uh->check == 0) uh->check = CSUM_MANGLED_0")
constexpr sum16 udp_csum_mangle0(sum16 check) { return check == 0 ? CSUM_MANGLED_0 : check; }

// Updates a folded checksum `*sum` for a 16-bit field changing from `old` to `new_` (both raw,
// as stored). RFC 1624 eqn. 3. kernel: csum_replace2(), include/net/checksum.h
inline void csum_replace2(sum16* sum, be16 old, be16 new_) {
  // kernel: csum_replace4() on the zero-extended values.
  wsum tmp = csum_sub(~csum_unfold(*sum), old);
  *sum = csum_fold(csum_add(tmp, new_));
}

}  // namespace xmit
