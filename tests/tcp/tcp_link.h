// tests/tcp/tcp_link.h — two ESTABLISHED tcp_socks (agreed ISNs, MSS 1448 with timestamps, window
// scale 7 both ways, 256 KiB receive buffers, TCP_NODELAY, no GSO, software checksums; SACK and the
// congestion control as TcpLinkConfig says: by default no SACK and Reno) joined
// through stack/dev/sim_link, driven by one injected clock. The IPv4 + Ethernet framing is a thin
// test-side wrapper (stack/ipv4's ip_make_skb path is built around UDP corking and neighbour
// output; wiring TCP into it is the socket slice's job): one frame per segment, DF, the IP header
// checksum filled, the TCP segment copied behind it. Received frames are copied into skbs of the
// endpoint's own pool, checked as tcp_v4_rcv() does, then handed to tcp_v4_do_rcv() of the socket
// the 4-tuple names (or the listener on the port; else answered by tcp_v4_send_reset()). In
// handshake mode (TcpLinkConfig::handshake) the connection is opened and closed by the state
// machine (tcp_conn.h) instead of being set up ESTABLISHED.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "stack/dev/sim_link.h"
#include "stack/skb/pool.h"
#include "stack/tcp/tcp_conn.h"
#include "stack/tcp/tcp_sock.h"

namespace xmit::testing_tcp {

// The byte at stream position `pos` of direction `dir` (0: a to b, 1: b to a): a hash, so a
// byte lost, repeated, reordered or changed shows at the first position it moves.
uint8_t stream_byte(int dir, uint64_t pos);
void stream_fill(int dir, uint64_t pos, uint8_t* out, size_t n);

// Checks a received stream byte by byte against stream_byte() and keeps an FNV-1a hash of it.
struct StreamCheck {
  int dir = 0;
  uint64_t pos = 0;         // bytes checked
  uint64_t mismatch = ~0ull;  // first position that differed, or ~0
  uint64_t fnv = 0xcbf29ce484222325ull;
  void feed(const uint8_t* p, size_t n);
  bool ok() const { return mismatch == ~0ull; }
};
// FNV-1a of the first `n` bytes of direction `dir`, as the sender wrote them.
uint64_t stream_fnv(int dir, uint64_t n);

// The owner of a peer's sockets (handshake mode): one child for the listener, done() counted.
struct LinkPeer;
class LinkOps : public TcpOps {
 public:
  LinkPeer* p = nullptr;
  tcp_sock* clone(const tcp_sock* listener) override;
  void hash(tcp_sock*) override {}
  void done(tcp_sock*) override { ++done_calls; }
  uint32_t secure_seq(be32, be32, uint16_t, uint16_t) override { return isn; }
  uint32_t secure_ts_off(be32, be32, uint16_t, uint16_t) override { return ts_off; }
  int done_calls = 0;
  uint32_t isn = 0, ts_off = 0;
};

struct LinkPeer {
  std::unique_ptr<BufPool> heads;
  std::unique_ptr<BufPool> pages;
  std::unique_ptr<SkbPool> skbs;
  tcp_sock tp;                       // the connection, or (handshake mode, b) the listener
  std::unique_ptr<tcp_sock> child;   // handshake mode, b: the accepted connection
  tcp_sock* conn = nullptr;          // the connection the application uses (null until accepted)
  LinkOps ops;
  bool closed = false;               // handshake mode: close() called
  uint64_t resets_sent = 0;          // segments no socket wanted (tcp_v4_send_reset())
  SimEndpoint* dev = nullptr;
  const uint8_t* peer_mac = nullptr;
  uint16_t ident = 1;
  int dir = 0;  // the direction this peer sends
  // Wire side.
  uint64_t tx_frames = 0, tx_full = 0, rx_frames = 0, rx_bad = 0, rx_nobuf = 0, corrupted = 0;
  uint32_t corrupt_every = 0;  // flip a bit in every n-th received frame before the checks
  uint32_t high_sent = 0;      // highest end_seq sent (for counting retransmitted segments)
  uint64_t retrans_frames = 0;
  uint64_t small_windows = 0;  // segments sent offering less than one MSS of window
  uint64_t probes = 0;         // zero-window probes sent (no data, seq snd_una - 1)
  uint64_t read_pause_us = 0;  // the application reads only in every other period of this length
  // Application side.
  uint64_t to_send = 0, sent = 0;
  bool fin_sent = false, eof = false;
  StreamCheck check;
  std::vector<uint8_t> scratch;
  std::vector<uint8_t> txbuf;  // stream bytes from txbuf_pos, what the next send offers
  uint64_t txbuf_pos = ~0ull;
};

struct TcpLinkConfig {
  uint64_t bytes_each_way = 16u << 20;
  SimFaults faults;        // both directions
  uint32_t seed = 42;
  uint64_t latency_ns = 50'000;
  uint32_t corrupt_every = 0;
  uint64_t read_pause_us = 0;  // readers that stop for this long every other period (0: never)
  uint64_t max_sim_us = 3600ull * 1000000;  // give up (a stall) after an hour of simulated time
  // Open and close through the state machine: b listens, a connects (tcp_connect), each side ends
  // its stream with shutdown(SHUT_WR) and close()s after reading the peer's FIN; done when both
  // sockets reached TCP_CLOSE through done() (TIME_WAIT included). Off: two sockets set up
  // ESTABLISHED by hand, FIN by tcp_send_fin().
  bool handshake = false;
  bool sack = false;  // both ends negotiated SACK
  const tcp_congestion_ops* ca = nullptr;  // congestion control (null: Reno, the tcp_sock default)
};

struct TcpLinkResult {
  uint64_t sim_us = 0;
  uint64_t iterations = 0;
  bool finished = false;
  SimPipeStats ab, ba;
};

// Runs the transfer both ways to FIN and full acknowledgement (or the time limit). `a` and `b`
// are filled in; their checks say whether the streams arrived intact.
TcpLinkResult run_tcp_link(const TcpLinkConfig& cfg, LinkPeer* a, LinkPeer* b);

}  // namespace xmit::testing_tcp
