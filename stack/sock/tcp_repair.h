// stack/sock/tcp_repair.h — an established TCP connection's state as the kernel's TCP_REPAIR
// interface takes it (linux/tcp.h: TCP_REPAIR, TCP_QUEUE_SEQ, TCP_REPAIR_OPTIONS, TCP_TIMESTAMP,
// TCP_REPAIR_WINDOW; the sequence CRIU's libsoccr restores with), for moving a connection from the
// stack into the kernel socket behind its fd (ShadowOps::tcp_repair(), at fork()).
#pragma once

#include <cstdint>

#include "absl/types/span.h"
#include "stack/base/byteorder.h"

namespace xmit {

struct TcpRepairState {
  be32 saddr = 0, daddr = 0;
  uint16_t sport = 0, dport = 0;  // host order
  uint32_t snd_una = 0;           // the send queue's first byte (TCP_QUEUE_SEQ, TCP_SEND_QUEUE)
  uint32_t copied_seq = 0;        // the receive queue's first unread byte (TCP_QUEUE_SEQ, TCP_RECV_QUEUE)
  // TCP_REPAIR_OPTIONS: the peer's MSS; the window scales when wscale_ok; SACK; timestamps.
  uint16_t mss_clamp = 0;
  bool wscale_ok = false, sack_ok = false, tstamp_ok = false;
  uint8_t snd_wscale = 0, rcv_wscale = 0;
  uint32_t tsval = 0;             // TCP_TIMESTAMP: the TSval the connection would send now
  // TCP_REPAIR_WINDOW (struct tcp_repair_window)
  uint32_t snd_wl1 = 0, snd_wnd = 0, max_window = 0, rcv_wnd = 0, rcv_wup = 0;
  // The kernel socket connected with its SYN deferred (TcpSocket::kernel_hash_connect()): it goes
  // back to closed first, its port freed unless the program bound it to a port it named
  // (shadow_bound: SOCK_BINDPORT_LOCK). fastopen_connect: the program set TCP_FASTOPEN_CONNECT.
  bool shadow_deferred = false, shadow_bound = false, fastopen_connect = false;
  absl::Span<const uint8_t> rcvq;   // received, not yet read: copied_seq .. rcv_nxt
  absl::Span<const uint8_t> sentq;  // sent, not yet acknowledged: snd_una .. snd_nxt
  absl::Span<const uint8_t> unsent; // written, not yet sent: snd_nxt .. write_seq (sent normally after)
};

}  // namespace xmit
