// stack/wire/wire.h — what every header view and repr in stack/wire promises; MAC/IPv4 address helpers.
// Kernel counterparts: the header structs of include/uapi/linux/{if_ether,if_arp,ip,udp,icmp}.h.
#pragma once

// THE PARSE/EMIT CONTRACT (every view and repr in stack/wire follows it):
//  * A view (`BasicIpHdr<const uint8_t>` to read, `BasicIpHdr<uint8_t>` to write) is a span over
//    bytes plus named offsets. Fields are loaded and stored with memcpy, never through a cast
//    struct, so any alignment is fine.
//  * `parse(buf)` succeeds only if `buf` holds the whole header and every length field in it is
//    consistent with `buf` (e.g. IPv4: 5 <= ihl, ihl*4 <= tot_len <= buf.size()). After a successful
//    parse no accessor reads out of bounds. Views made with `at(buf)` (for emitting) only check
//    that the fixed header fits; their variable-length accessors (payload(), options()) clamp to
//    `buf`, so no accessor of any view ever reads or writes outside its span.
//  * Numeric fields (lengths, ids, ports, types) are returned and set in host order. Addresses are
//    kept as they sit in the packet (`be32`, as the kernel's __be32; see make_ipv4_addr()), and
//    checksums as the raw `sum16` the checksum functions produce (stack/base/checksum.h).
//  * A repr (`Ipv4Repr`, ...) is a plain value: designated initialisers, defaulted ==. Its
//    `emit()` initialises every byte of the header it writes (tests pre-fill buffers with 0xFF to
//    catch a missed byte); its `parse()` returns 0 or -errno: -EINVAL for a malformed header,
//    -EBADMSG for a bad checksum (verification can be switched off, e.g. for fuzzing).

#include <array>
#include <cstdint>
#include <type_traits>

#include "absl/types/span.h"
#include "stack/base/byteorder.h"

namespace xmit {

inline constexpr size_t kEthAlen = 6;  // kernel: ETH_ALEN
using MacAddr = std::array<uint8_t, kEthAlen>;

// [off, off + len) of `s`, which the caller has checked lies inside it. Used instead of
// Span::subspan()/first(), whose range check throws through a compiled abseil library that
// libxmit.so must not link (header-only abseil only).
template <class Byte>
constexpr absl::Span<Byte> span_range(absl::Span<Byte> s, size_t off, size_t len) {
  return absl::Span<Byte>(s.data() + off, len);
}

// A view's setters exist only over mutable bytes.
template <class Byte>
concept WritableBytes = !std::is_const_v<Byte>;

// a.b.c.d as the be32 the packet carries. Example: make_ipv4_addr(10, 0, 0, 1).
constexpr be32 make_ipv4_addr(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return cpu_to_be32(static_cast<uint32_t>(a) << 24 | static_cast<uint32_t>(b) << 16 |
                     static_cast<uint32_t>(c) << 8 | d);
}

}  // namespace xmit
