// stack/wire/udp.h — UDP header view and repr (RFC 768). Kernel counterparts: struct udphdr,
// include/uapi/linux/udp.h; the length checks of __udp4_lib_rcv(), the checksum of udp_send_skb().
#pragma once

#include <netinet/in.h>  // IPPROTO_UDP

#include <algorithm>
#include <optional>

#include "absl/types/span.h"
#include "stack/base/checksum.h"
#include "stack/wire/wire.h"

namespace xmit {

template <class Byte>
class BasicUdpHdr {
 public:
  static constexpr size_t kHdrLen = 8;

  // kernel: __udp4_lib_rcv() — 8 <= len <= what we have ("short_packet" otherwise).
  static std::optional<BasicUdpHdr> parse(absl::Span<Byte> buf) {
    if (buf.size() < kHdrLen) return std::nullopt;
    BasicUdpHdr h(buf);
    if (h.len() < kHdrLen || h.len() > buf.size()) return std::nullopt;
    return h;
  }
  static std::optional<BasicUdpHdr> at(absl::Span<Byte> buf) {
    if (buf.size() < kHdrLen) return std::nullopt;
    return BasicUdpHdr(buf);
  }
  operator BasicUdpHdr<const uint8_t>() const requires WritableBytes<Byte> {
    return BasicUdpHdr<const uint8_t>(buf_);
  }

  uint16_t source() const { return load_be16(&buf_[0]); }
  uint16_t dest() const { return load_be16(&buf_[2]); }
  uint16_t len() const { return load_be16(&buf_[4]); }  // header + payload
  sum16 check() const { return load_raw16(&buf_[6]); }  // 0: no checksum (IPv4 only)
  // [8, len), clamped to the span.
  absl::Span<Byte> payload() const {
    size_t end = std::clamp<size_t>(len(), kHdrLen, buf_.size());
    return span_range(buf_, kHdrLen, end - kHdrLen);
  }
  absl::Span<Byte> bytes() const { return buf_; }

  void set_source(uint16_t v) requires WritableBytes<Byte> { store_be16(&buf_[0], v); }
  void set_dest(uint16_t v) requires WritableBytes<Byte> { store_be16(&buf_[2], v); }
  void set_len(uint16_t v) requires WritableBytes<Byte> { store_be16(&buf_[4], v); }
  void set_check(sum16 v) requires WritableBytes<Byte> { store_raw16(&buf_[6], v); }

 private:
  template <class> friend class BasicUdpHdr;
  explicit BasicUdpHdr(absl::Span<Byte> buf) : buf_(buf) {}
  absl::Span<Byte> buf_;
};

using UdpHdr = BasicUdpHdr<uint8_t>;
using UdpHdrView = BasicUdpHdr<const uint8_t>;

// How the transport checksum is produced on transmit. kernel: skb->ip_summed on the TX path.
enum class CsumTx : uint8_t {
  kNone,      // UDP over IPv4 only: check = 0, no checksum (kernel: sk_no_check_tx)
  kFull,      // computed in software (kernel: CHECKSUM_NONE → udp_send_skb() sums it)
  kPartial,   // the device finishes it: check holds the folded pseudo-header sum
              // (kernel: CHECKSUM_PARTIAL, udp4_hwcsum())
};

struct UdpRepr {
  uint16_t source = 0;
  uint16_t dest = 0;

  static constexpr size_t header_len() { return BasicUdpHdr<uint8_t>::kHdrLen; }
  // A zero check means "not computed" and is accepted. -EBADMSG for a wrong checksum.
  static int parse(UdpHdrView h, be32 saddr, be32 daddr, UdpRepr* out, bool verify_csum = true);
  // `h` spans exactly header + payload, and the payload is already in place: len is taken from
  // the span. Returns 0, or -EMSGSIZE when the span is longer than 65535 bytes.
  int emit(UdpHdr h, be32 saddr, be32 daddr, CsumTx csum) const;
  bool operator==(const UdpRepr&) const = default;
};

}  // namespace xmit
