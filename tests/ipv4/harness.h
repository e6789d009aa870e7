// tests/ipv4/harness.h — a test bed for stack/ipv4: pools pre-filled with 0xFF, a recording
// neighbour layer, a deterministic ident generator, a UDP send helper and an independent checksum.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "stack/ipv4/inet_sock.h"
#include "stack/ipv4/ip_ident.h"
#include "stack/ipv4/ip_output.h"
#include "stack/ipv4/udp_send.h"
#include "stack/skb/pool.h"
#include "stack/wire/wire.h"

namespace xmit::testing_ipv4 {

inline const be32 kSaddr = make_ipv4_addr(198, 18, 0, 1);
inline const be32 kDaddr = make_ipv4_addr(198, 18, 0, 2);
inline const be32 kGateway = make_ipv4_addr(198, 18, 0, 254);
inline constexpr uint16_t kSport = 40000;
inline constexpr uint16_t kDport = 9;

// One packet as the neighbour layer got it.
struct Sent {
  std::vector<uint8_t> bytes;  // from the IPv4 header
  IpTxInfo info;
  uint8_t ip_summed = 0;
  uint16_t csum_start_from_data = 0;  // csum_start - headroom
  uint16_t csum_offset = 0;
  uint32_t headroom = 0;
};

class RecordingNeigh final : public NeighOutput {
 public:
  int neigh_output(sk_buff* skb, const IpTxInfo& info) override;
  std::vector<Sent> sent;
  int fail_with = 0;  // returned (after freeing the skb) when non-zero
  int calls = 0;      // neigh_output() calls (a UDP GSO packet's segments come in one)
};

// Returns 0x1000, 0x1001, ... and records what it was asked.
class CountingIdents final : public IpIdentGen {
 public:
  uint16_t select_ident(be32 daddr, be32 saddr, uint8_t protocol, int segs, uint64_t now_ns) override;
  uint16_t next = 0x1000;
  int calls = 0;
  be32 last_daddr = 0, last_saddr = 0;
  uint8_t last_protocol = 0;
};

struct Bed {
  explicit Bed(uint32_t nr_skbs = 512, uint32_t nr_frags = 512, uint32_t buf_size = 2048);
  ~Bed();

  IpOutCtx ctx();
  Ipv4Route route() const;  // on-link to kDaddr through `dev`
  Flowi4 fl4() const;
  // A UDP socket bound to kSaddr:kSport, unconnected.
  InetSock sock() const;

  // udp_sendmsg()'s uncorked path: ipcm_init_sk(), ip_make_skb(payload + 8, 8), udp_send_skb().
  int send(InetSock* sk, const std::vector<uint8_t>& payload, unsigned flags = 0,
           const IpcmCookie* ipc = nullptr);
  // The corked path: ip_append_data() of one piece (the UDP layer's MSG_MORE / UDP_CORK).
  int append(InetSock* sk, const std::vector<uint8_t>& piece, unsigned flags = 0);
  int push(InetSock* sk) { return udp_push_pending_frames(ctx(), sk, &udp_mib); }

  bool pools_full() const;  // every skb and buffer back in its pool

  std::unique_ptr<BufPool> heads;
  std::unique_ptr<BufPool> frags;
  std::unique_ptr<SkbPool> skbs;
  NetdevFeatures dev;
  Ipv4Route rt_override;
  bool use_rt_override = false;
  RecordingNeigh neigh;
  CountingIdents idents;
  IpMib mib;
  UdpMib udp_mib;
  Ipv4Sysctl sysctl;
  uint64_t now_ns = 5'000'000'000;
  uint16_t sport = kSport;  // fl4()'s source port
};

std::vector<uint8_t> pattern(size_t n, uint8_t seed = 1);

// RFC 1071 written independently of stack/base: big-endian 16-bit words, end-around carry.
uint16_t ref_csum(const std::vector<uint8_t>& bytes);
// The UDP checksum of a whole datagram (header with check = 0 + payload), as the wire carries it
// (host-order value of the 16-bit field). 0 is returned as 0xffff.
uint16_t ref_udp_csum(be32 saddr, be32 daddr, const std::vector<uint8_t>& udp);

// Reassembles the packets of one datagram (all with the same id). Fails the test on overlaps,
// holes or a missing last fragment. Returns the IP payload.
std::vector<uint8_t> reassemble(const std::vector<Sent>& pkts);

inline uint16_t be16_at(const std::vector<uint8_t>& b, size_t off) {
  return static_cast<uint16_t>(b[off] << 8 | b[off + 1]);
}

}  // namespace xmit::testing_ipv4
