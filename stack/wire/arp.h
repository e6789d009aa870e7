// stack/wire/arp.h — ARP for Ethernet/IPv4 (RFC 826): header view and repr. Kernel counterpart:
// struct arphdr + the Ethernet/IPv4 body, include/uapi/linux/if_arp.h, net/ipv4/arp.c.
#pragma once

#include <net/if_arp.h>      // ARPHRD_ETHER, ARPOP_REQUEST, ARPOP_REPLY
#include <linux/if_ether.h>  // ETH_P_IP

#include <cstring>
#include <optional>

#include "absl/types/span.h"
#include "stack/wire/wire.h"

namespace xmit {

// Only the Ethernet/IPv4 flavour: parse() requires ar_hrd == ARPHRD_ETHER, ar_pro == ETH_P_IP,
// ar_hln == 6, ar_pln == 4, which fixes the offsets of the four addresses (kernel: arp_rcv()
// drops what does not match the device's hardware length, arp_process() the rest).
template <class Byte>
class BasicArpHdr {
 public:
  static constexpr size_t kHdrLen = 28;  // 8 + 2 * (6 + 4)

  static std::optional<BasicArpHdr> parse(absl::Span<Byte> buf) {
    if (buf.size() < kHdrLen) return std::nullopt;
    BasicArpHdr h(buf);
    if (h.ar_hrd() != ARPHRD_ETHER || h.ar_pro() != ETH_P_IP || h.ar_hln() != kEthAlen ||
        h.ar_pln() != 4) {
      return std::nullopt;
    }
    return h;
  }
  static std::optional<BasicArpHdr> at(absl::Span<Byte> buf) {
    if (buf.size() < kHdrLen) return std::nullopt;
    return BasicArpHdr(buf);
  }
  operator BasicArpHdr<const uint8_t>() const requires WritableBytes<Byte> {
    return BasicArpHdr<const uint8_t>(buf_);
  }

  uint16_t ar_hrd() const { return load_be16(&buf_[0]); }
  uint16_t ar_pro() const { return load_be16(&buf_[2]); }
  uint8_t ar_hln() const { return buf_[4]; }
  uint8_t ar_pln() const { return buf_[5]; }
  uint16_t ar_op() const { return load_be16(&buf_[6]); }  // ARPOP_REQUEST, ARPOP_REPLY
  MacAddr ar_sha() const { return mac_at(8); }
  be32 ar_sip() const { return load_raw32(&buf_[14]); }
  MacAddr ar_tha() const { return mac_at(18); }
  be32 ar_tip() const { return load_raw32(&buf_[24]); }
  absl::Span<Byte> bytes() const { return buf_; }

  void set_ar_hrd(uint16_t v) requires WritableBytes<Byte> { store_be16(&buf_[0], v); }
  void set_ar_pro(uint16_t v) requires WritableBytes<Byte> { store_be16(&buf_[2], v); }
  void set_ar_hln(uint8_t v) requires WritableBytes<Byte> { buf_[4] = v; }
  void set_ar_pln(uint8_t v) requires WritableBytes<Byte> { buf_[5] = v; }
  void set_ar_op(uint16_t v) requires WritableBytes<Byte> { store_be16(&buf_[6], v); }
  void set_ar_sha(const MacAddr& m) requires WritableBytes<Byte> { std::memcpy(&buf_[8], m.data(), kEthAlen); }
  void set_ar_sip(be32 a) requires WritableBytes<Byte> { store_raw32(&buf_[14], a); }
  void set_ar_tha(const MacAddr& m) requires WritableBytes<Byte> { std::memcpy(&buf_[18], m.data(), kEthAlen); }
  void set_ar_tip(be32 a) requires WritableBytes<Byte> { store_raw32(&buf_[24], a); }

 private:
  template <class> friend class BasicArpHdr;
  explicit BasicArpHdr(absl::Span<Byte> buf) : buf_(buf) {}
  MacAddr mac_at(size_t off) const {
    MacAddr m;
    std::memcpy(m.data(), &buf_[off], kEthAlen);
    return m;
  }
  absl::Span<Byte> buf_;
};

using ArpHdr = BasicArpHdr<uint8_t>;
using ArpHdrView = BasicArpHdr<const uint8_t>;

// kernel: arp_create(), net/ipv4/arp.c fills the same fields.
struct ArpRepr {
  uint16_t ar_op = ARPOP_REQUEST;
  MacAddr ar_sha{};
  be32 ar_sip = 0;
  MacAddr ar_tha{};
  be32 ar_tip = 0;

  static constexpr size_t header_len() { return BasicArpHdr<uint8_t>::kHdrLen; }
  // The view's parse() already checked the hardware/protocol types and lengths.
  static int parse(ArpHdrView h, ArpRepr* out) {
    *out = ArpRepr{.ar_op = h.ar_op(), .ar_sha = h.ar_sha(), .ar_sip = h.ar_sip(),
                   .ar_tha = h.ar_tha(), .ar_tip = h.ar_tip()};
    return 0;
  }
  void emit(ArpHdr h) const {
    h.set_ar_hrd(ARPHRD_ETHER);
    h.set_ar_pro(ETH_P_IP);
    h.set_ar_hln(kEthAlen);
    h.set_ar_pln(4);
    h.set_ar_op(ar_op);
    h.set_ar_sha(ar_sha);
    h.set_ar_sip(ar_sip);
    h.set_ar_tha(ar_tha);
    h.set_ar_tip(ar_tip);
  }
  bool operator==(const ArpRepr&) const = default;
};

}  // namespace xmit
