// stack/wire/tcp.h — TCP header view (RFC 9293 §3.1) and the option kinds the output path writes.
// Kernel counterparts: struct tcphdr, include/uapi/linux/tcp.h; TCPOPT_* and TCPOLEN_*, include/net/tcp.h.
#pragma once

#include <netinet/in.h>  // IPPROTO_TCP

#include <optional>

#include "absl/types/span.h"
#include "stack/base/checksum.h"
#include "stack/wire/wire.h"

namespace xmit {

// kernel: TCPHDR_* flag bits (byte 13 of the header), include/net/tcp.h
inline constexpr uint8_t TCPHDR_FIN = 0x01;
inline constexpr uint8_t TCPHDR_SYN = 0x02;
inline constexpr uint8_t TCPHDR_RST = 0x04;
inline constexpr uint8_t TCPHDR_PSH = 0x08;
inline constexpr uint8_t TCPHDR_ACK = 0x10;
inline constexpr uint8_t TCPHDR_URG = 0x20;
inline constexpr uint8_t TCPHDR_ECE = 0x40;
inline constexpr uint8_t TCPHDR_CWR = 0x80;

// kernel: TCPOPT_*, TCPOLEN_*, include/net/tcp.h
inline constexpr uint8_t TCPOPT_NOP = 1;
inline constexpr uint8_t TCPOPT_EOL = 0;
inline constexpr uint8_t TCPOPT_MSS = 2;
inline constexpr uint8_t TCPOPT_WINDOW = 3;
inline constexpr uint8_t TCPOPT_SACK_PERM = 4;
inline constexpr uint8_t TCPOPT_SACK = 5;
inline constexpr uint8_t TCPOPT_TIMESTAMP = 8;
inline constexpr uint8_t TCPOLEN_TIMESTAMP = 10;
inline constexpr uint8_t TCPOLEN_TSTAMP_ALIGNED = 12;
inline constexpr uint8_t TCPOLEN_SACK_BASE = 2;
inline constexpr uint8_t TCPOLEN_SACK_BASE_ALIGNED = 4;
inline constexpr uint8_t TCPOLEN_SACK_PERBLOCK = 8;
inline constexpr uint8_t MAX_TCP_OPTION_SPACE = 40;

template <class Byte>
class BasicTcpHdr {
 public:
  static constexpr size_t kMinLen = 20;  // doff == 5
  static constexpr size_t kMaxLen = 60;  // doff == 15

  // RFC 9293 §3.1; kernel: tcp_v4_rcv() — doff >= 5 and doff*4 <= what we have.
  static std::optional<BasicTcpHdr> parse(absl::Span<Byte> buf) {
    if (buf.size() < kMinLen) return std::nullopt;
    BasicTcpHdr h(buf);
    if (h.doff() < 5 || h.doff() * 4u > buf.size()) return std::nullopt;
    return h;
  }
  // For emitting: only the 20-byte minimum is checked.
  static std::optional<BasicTcpHdr> at(absl::Span<Byte> buf) {
    if (buf.size() < kMinLen) return std::nullopt;
    return BasicTcpHdr(buf);
  }

  uint16_t source() const { return load_be16(&buf_[0]); }
  uint16_t dest() const { return load_be16(&buf_[2]); }
  uint32_t seq() const { return load_be32(&buf_[4]); }
  uint32_t ack_seq() const { return load_be32(&buf_[8]); }
  uint8_t doff() const { return buf_[12] >> 4; }  // in 32-bit words
  uint8_t flags() const { return buf_[13]; }      // TCPHDR_*
  uint16_t window() const { return load_be16(&buf_[14]); }
  sum16 check() const { return load_raw16(&buf_[16]); }
  uint16_t urg_ptr() const { return load_be16(&buf_[18]); }
  // [20, doff*4); only meaningful after parse().
  absl::Span<Byte> options() const { return span_range(buf_, kMinLen, doff() * 4u - kMinLen); }
  absl::Span<Byte> bytes() const { return buf_; }

  void set_source(uint16_t v) requires WritableBytes<Byte> { store_be16(&buf_[0], v); }
  void set_dest(uint16_t v) requires WritableBytes<Byte> { store_be16(&buf_[2], v); }
  void set_seq(uint32_t v) requires WritableBytes<Byte> { store_be32(&buf_[4], v); }
  void set_ack_seq(uint32_t v) requires WritableBytes<Byte> { store_be32(&buf_[8], v); }
  // Writes the whole byte 12: doff and the four reserved bits (zero; AccECN's AE bit unused).
  void set_doff(uint8_t words) requires WritableBytes<Byte> { buf_[12] = static_cast<uint8_t>(words << 4); }
  void set_flags(uint8_t v) requires WritableBytes<Byte> { buf_[13] = v; }
  void set_window(uint16_t v) requires WritableBytes<Byte> { store_be16(&buf_[14], v); }
  void set_check(sum16 v) requires WritableBytes<Byte> { store_raw16(&buf_[16], v); }
  void set_urg_ptr(uint16_t v) requires WritableBytes<Byte> { store_be16(&buf_[18], v); }

 private:
  explicit BasicTcpHdr(absl::Span<Byte> buf) : buf_(buf) {}
  absl::Span<Byte> buf_;
};

using TcpHdr = BasicTcpHdr<uint8_t>;
using TcpHdrView = BasicTcpHdr<const uint8_t>;

}  // namespace xmit
