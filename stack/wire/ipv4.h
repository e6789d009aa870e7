// stack/wire/ipv4.h — IPv4 header view and repr (RFC 791). Kernel counterparts: struct iphdr,
// include/uapi/linux/ip.h; the length checks of ip_rcv_core(), net/ipv4/ip_input.c.
#pragma once

#include <netinet/in.h>  // IPPROTO_UDP, IPPROTO_ICMP
#include <netinet/ip.h>  // IP_DF, IP_MF

#include <algorithm>
#include <optional>

#include "absl/types/span.h"
#include "stack/base/checksum.h"
#include "stack/wire/wire.h"

namespace xmit {

// kernel: include/net/ip.h (frag_off bits, host order)
inline constexpr uint16_t IP_CE = 0x8000;
inline constexpr uint16_t IP_OFFSET = 0x1fff;

template <class Byte>
class BasicIpHdr {
 public:
  static constexpr size_t kMinLen = 20;  // ihl == 5
  static constexpr size_t kMaxLen = 60;  // ihl == 15

  // RFC 791 §3.1; kernel: ip_rcv_core() — version 4, ihl >= 5, ihl*4 <= tot_len <= what we have.
  static std::optional<BasicIpHdr> parse(absl::Span<Byte> buf) {
    if (buf.size() < kMinLen) return std::nullopt;
    BasicIpHdr h(buf);
    if (h.version() != 4 || h.ihl() < 5) return std::nullopt;
    size_t hlen = h.ihl() * 4u;
    if (hlen > buf.size() || h.tot_len() < hlen || h.tot_len() > buf.size()) return std::nullopt;
    return h;
  }
  static std::optional<BasicIpHdr> at(absl::Span<Byte> buf) {
    if (buf.size() < kMinLen) return std::nullopt;
    return BasicIpHdr(buf);
  }
  operator BasicIpHdr<const uint8_t>() const requires WritableBytes<Byte> {
    return BasicIpHdr<const uint8_t>(buf_);
  }

  uint8_t version() const { return buf_[0] >> 4; }
  uint8_t ihl() const { return buf_[0] & 0x0f; }  // in 32-bit words
  uint8_t tos() const { return buf_[1]; }
  uint16_t tot_len() const { return load_be16(&buf_[2]); }
  uint16_t id() const { return load_be16(&buf_[4]); }
  uint16_t frag_off() const { return load_be16(&buf_[6]); }  // flags + offset in 8-byte units
  bool df() const { return frag_off() & IP_DF; }
  bool mf() const { return frag_off() & IP_MF; }
  uint32_t frag_offset_bytes() const { return (frag_off() & IP_OFFSET) * 8u; }
  // kernel: ip_is_fragment(), include/net/ip.h
  bool is_fragment() const { return frag_off() & (IP_MF | IP_OFFSET); }
  uint8_t ttl() const { return buf_[8]; }
  uint8_t protocol() const { return buf_[9]; }
  sum16 check() const { return load_raw16(&buf_[10]); }
  be32 saddr() const { return load_raw32(&buf_[12]); }
  be32 daddr() const { return load_raw32(&buf_[16]); }

  size_t header_len() const { return std::clamp<size_t>(ihl() * 4u, kMinLen, buf_.size()); }
  // kernel: struct ip_options.optlen
  size_t optlen() const { return header_len() - kMinLen; }
  absl::Span<Byte> options() const { return span_range(buf_, kMinLen, optlen()); }
  // [ihl*4, tot_len): excludes link-layer padding after tot_len.
  absl::Span<Byte> payload() const {
    size_t end = std::min<size_t>(tot_len(), buf_.size());
    size_t hl = header_len();
    return span_range(buf_, hl, end > hl ? end - hl : 0);
  }
  absl::Span<Byte> bytes() const { return buf_; }
  // True when the header checksum verifies. kernel: ip_fast_csum() == 0 in ip_rcv_core()
  bool csum_ok() const { return ip_fast_csum(buf_.data(), header_len() / 4) == 0; }

  void set_version(uint8_t v) requires WritableBytes<Byte> { buf_[0] = (v << 4) | (buf_[0] & 0x0f); }
  void set_ihl(uint8_t v) requires WritableBytes<Byte> { buf_[0] = (buf_[0] & 0xf0) | (v & 0x0f); }
  void set_tos(uint8_t v) requires WritableBytes<Byte> { buf_[1] = v; }
  void set_tot_len(uint16_t v) requires WritableBytes<Byte> { store_be16(&buf_[2], v); }
  void set_id(uint16_t v) requires WritableBytes<Byte> { store_be16(&buf_[4], v); }
  void set_frag_off(uint16_t v) requires WritableBytes<Byte> { store_be16(&buf_[6], v); }
  void set_ttl(uint8_t v) requires WritableBytes<Byte> { buf_[8] = v; }
  void set_protocol(uint8_t v) requires WritableBytes<Byte> { buf_[9] = v; }
  void set_check(sum16 v) requires WritableBytes<Byte> { store_raw16(&buf_[10], v); }
  void set_saddr(be32 a) requires WritableBytes<Byte> { store_raw32(&buf_[12], a); }
  void set_daddr(be32 a) requires WritableBytes<Byte> { store_raw32(&buf_[16], a); }

 private:
  template <class> friend class BasicIpHdr;
  explicit BasicIpHdr(absl::Span<Byte> buf) : buf_(buf) {}
  absl::Span<Byte> buf_;
};

using IpHdr = BasicIpHdr<uint8_t>;
using IpHdrView = BasicIpHdr<const uint8_t>;

// Zeroes and recomputes the header checksum. kernel: ip_send_check(), net/ipv4/ip_output.c
inline void ip_send_check(IpHdr h) {
  h.set_check(0);
  h.set_check(ip_fast_csum(h.bytes().data(), h.header_len() / 4));
}

// A header without options (the repr neither keeps nor emits them; parse() skips them).
struct Ipv4Repr {
  uint8_t tos = 0;
  uint16_t id = 0;
  uint16_t frag_off = 0;  // IP_DF | IP_MF | offset/8, host order
  uint8_t ttl = 64;       // kernel: sysctl_ip_default_ttl
  uint8_t protocol = 0;
  be32 saddr = 0;
  be32 daddr = 0;
  uint16_t payload_len = 0;  // tot_len - ihl*4

  static constexpr size_t header_len() { return BasicIpHdr<uint8_t>::kMinLen; }
  // -EBADMSG when verify_csum and the header checksum is wrong.
  static int parse(IpHdrView h, Ipv4Repr* out, bool verify_csum = true);
  // Writes a 20-byte header; the checksum is filled unless the device does it (kTxIpCsum), in
  // which case it is written as 0. `h` must come from IpHdr::at() or parse().
  void emit(IpHdr h, bool fill_csum = true) const;
  bool operator==(const Ipv4Repr&) const = default;
};

}  // namespace xmit
