// tests/dev/test_frames.h — builds Ethernet/IPv4/UDP/TCP frames byte by byte for the device tests
// (stack/wire is written elsewhere; the devices must not depend on it), plus reference checksums.
#pragma once

#include <cstdint>
#include <vector>

namespace xmit::testing {

inline constexpr uint8_t kMacA[6] = {0x02, 0, 0, 0, 0, 0x0a};
inline constexpr uint8_t kMacB[6] = {0x02, 0, 0, 0, 0, 0x0b};
inline constexpr uint32_t kAddrA = 0x0a000001;  // 10.0.0.1, host order here
inline constexpr uint32_t kAddrB = 0x0a000002;

struct L4Spec {
  uint8_t protocol = 17;  // 17 UDP, 6 TCP
  uint32_t saddr = kAddrA;
  uint32_t daddr = kAddrB;
  uint16_t sport = 1000;
  uint16_t dport = 2000;
  uint32_t payload_len = 100;
  uint8_t payload_seed = 0;  // payload byte i is (seed + i) & 0xff
  uint16_t ip_id = 0x1234;
  uint16_t frag_off = 0x4000;  // DF
  uint32_t seq = 1000;         // TCP only
  uint8_t tcp_flags = 0x18;    // PSH|ACK
  std::vector<uint8_t> tcp_options;  // TCP only: after the 20-byte header (a multiple of 4 bytes)
  // true: the L4 checksum field holds the folded pseudo-header sum (CHECKSUM_PARTIAL, as the stack
  // leaves it for the device); false: the full checksum. The IP checksum is left 0 when
  // ip_csum_zero is set, else filled in.
  bool partial_csum = false;
  bool ip_csum_zero = false;
};

std::vector<uint8_t> make_frame(const L4Spec& s);

inline constexpr uint32_t kEthLen = 14, kIpLen = 20;
inline uint32_t l4_offset() { return kEthLen + kIpLen; }
inline uint32_t l4_csum_offset(uint8_t protocol) { return protocol == 6 ? 16 : 6; }
inline uint32_t l4_hdr_len(uint8_t protocol) { return protocol == 6 ? 20 : 8; }

// Reference ones-complement checks, written independently of stack/dev/sw_offload.
bool ipv4_csum_ok(const std::vector<uint8_t>& f);
bool l4_csum_ok(const std::vector<uint8_t>& f);  // pseudo-header + segment sums to 0xffff
uint16_t be16_at(const std::vector<uint8_t>& f, uint32_t off);
uint32_t be32_at(const std::vector<uint8_t>& f, uint32_t off);

}  // namespace xmit::testing
