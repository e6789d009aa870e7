// stack/wire/eth.h — Ethernet II header view and repr. Kernel counterpart: struct ethhdr,
// include/uapi/linux/if_ether.h. The contract is in stack/wire/wire.h.
#pragma once

#include <linux/if_ether.h>  // ETH_HLEN, ETH_P_IP, ETH_P_ARP

#include <cstring>
#include <optional>

#include "absl/types/span.h"
#include "stack/wire/wire.h"

namespace xmit {

template <class Byte>
class BasicEthHdr {
 public:
  static constexpr size_t kHdrLen = ETH_HLEN;  // 14

  static std::optional<BasicEthHdr> parse(absl::Span<Byte> buf) {
    if (buf.size() < kHdrLen) return std::nullopt;
    return BasicEthHdr(buf);
  }
  static std::optional<BasicEthHdr> at(absl::Span<Byte> buf) { return parse(buf); }

  operator BasicEthHdr<const uint8_t>() const requires WritableBytes<Byte> {
    return BasicEthHdr<const uint8_t>(buf_);
  }

  MacAddr h_dest() const { return mac_at(0); }
  MacAddr h_source() const { return mac_at(6); }
  uint16_t h_proto() const { return load_be16(&buf_[12]); }  // ETH_P_IP, ETH_P_ARP
  absl::Span<Byte> payload() const { return span_range(buf_, kHdrLen, buf_.size() - kHdrLen); }
  absl::Span<Byte> bytes() const { return buf_; }

  void set_h_dest(const MacAddr& m) requires WritableBytes<Byte> { std::memcpy(&buf_[0], m.data(), kEthAlen); }
  void set_h_source(const MacAddr& m) requires WritableBytes<Byte> { std::memcpy(&buf_[6], m.data(), kEthAlen); }
  void set_h_proto(uint16_t v) requires WritableBytes<Byte> { store_be16(&buf_[12], v); }

 private:
  template <class> friend class BasicEthHdr;
  explicit BasicEthHdr(absl::Span<Byte> buf) : buf_(buf) {}
  MacAddr mac_at(size_t off) const {
    MacAddr m;
    std::memcpy(m.data(), &buf_[off], kEthAlen);
    return m;
  }
  absl::Span<Byte> buf_;
};

using EthHdr = BasicEthHdr<uint8_t>;
using EthHdrView = BasicEthHdr<const uint8_t>;

// kernel: eth_header(), net/ethernet/eth.c builds the same three fields.
struct EthRepr {
  MacAddr h_dest{};
  MacAddr h_source{};
  uint16_t h_proto = 0;

  static constexpr size_t header_len() { return ETH_HLEN; }
  static int parse(EthHdrView h, EthRepr* out) {
    *out = EthRepr{.h_dest = h.h_dest(), .h_source = h.h_source(), .h_proto = h.h_proto()};
    return 0;
  }
  void emit(EthHdr h) const {
    h.set_h_dest(h_dest);
    h.set_h_source(h_source);
    h.set_h_proto(h_proto);
  }
  bool operator==(const EthRepr&) const = default;
};

}  // namespace xmit
