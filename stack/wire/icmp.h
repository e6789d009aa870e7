// stack/wire/icmp.h — ICMP header view (RFC 792) and an echo request/reply repr. Kernel
// counterparts: struct icmphdr, include/uapi/linux/icmp.h; icmp_reply(), net/ipv4/icmp.c.
#pragma once

#include <netinet/ip_icmp.h>  // ICMP_ECHO, ICMP_ECHOREPLY, ICMP_DEST_UNREACH

#include <optional>

#include "absl/types/span.h"
#include "stack/base/checksum.h"
#include "stack/wire/wire.h"

namespace xmit {

template <class Byte>
class BasicIcmpHdr {
 public:
  static constexpr size_t kHdrLen = 8;

  static std::optional<BasicIcmpHdr> parse(absl::Span<Byte> buf) {
    if (buf.size() < kHdrLen) return std::nullopt;
    return BasicIcmpHdr(buf);
  }
  static std::optional<BasicIcmpHdr> at(absl::Span<Byte> buf) { return parse(buf); }
  operator BasicIcmpHdr<const uint8_t>() const requires WritableBytes<Byte> {
    return BasicIcmpHdr<const uint8_t>(buf_);
  }

  uint8_t type() const { return buf_[0]; }
  uint8_t code() const { return buf_[1]; }
  sum16 checksum() const { return load_raw16(&buf_[2]); }
  uint16_t echo_id() const { return load_be16(&buf_[4]); }        // kernel: un.echo.id
  uint16_t echo_sequence() const { return load_be16(&buf_[6]); }  // kernel: un.echo.sequence
  be32 gateway() const { return load_raw32(&buf_[4]); }           // kernel: un.gateway
  uint16_t frag_mtu() const { return load_be16(&buf_[6]); }       // kernel: un.frag.mtu
  absl::Span<Byte> payload() const { return span_range(buf_, kHdrLen, buf_.size() - kHdrLen); }
  absl::Span<Byte> bytes() const { return buf_; }
  // The checksum covers the whole message (header and payload, i.e. the span).
  bool csum_ok() const { return ip_compute_csum(buf_.data(), buf_.size()) == 0; }

  void set_type(uint8_t v) requires WritableBytes<Byte> { buf_[0] = v; }
  void set_code(uint8_t v) requires WritableBytes<Byte> { buf_[1] = v; }
  void set_checksum(sum16 v) requires WritableBytes<Byte> { store_raw16(&buf_[2], v); }
  void set_echo_id(uint16_t v) requires WritableBytes<Byte> { store_be16(&buf_[4], v); }
  void set_echo_sequence(uint16_t v) requires WritableBytes<Byte> { store_be16(&buf_[6], v); }
  void set_gateway(be32 a) requires WritableBytes<Byte> { store_raw32(&buf_[4], a); }
  void set_frag_mtu(uint16_t v) requires WritableBytes<Byte> {
    store_be16(&buf_[4], 0);  // kernel: un.frag.__unused
    store_be16(&buf_[6], v);
  }

 private:
  template <class> friend class BasicIcmpHdr;
  explicit BasicIcmpHdr(absl::Span<Byte> buf) : buf_(buf) {}
  absl::Span<Byte> buf_;
};

using IcmpHdr = BasicIcmpHdr<uint8_t>;
using IcmpHdrView = BasicIcmpHdr<const uint8_t>;

// Echo request (ICMP_ECHO) or reply (ICMP_ECHOREPLY); the data follows in the same span.
struct IcmpEchoRepr {
  uint8_t type = ICMP_ECHO;
  uint16_t id = 0;
  uint16_t sequence = 0;

  static constexpr size_t header_len() { return BasicIcmpHdr<uint8_t>::kHdrLen; }
  // -EINVAL for another type or a nonzero code, -EBADMSG for a wrong checksum.
  static int parse(IcmpHdrView h, IcmpEchoRepr* out, bool verify_csum = true);
  // `h` spans header + data with the data already in place; the checksum covers both.
  void emit(IcmpHdr h) const;
  bool operator==(const IcmpEchoRepr&) const = default;
};

}  // namespace xmit
