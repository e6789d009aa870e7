// stack/tcp/tcp_timer.h — the socket's timers, run by whoever owns the clock: set tp->tcp_mstamp,
// call tcp_timers_run(), sleep until tcp_next_timer(). Kernel counterparts: tcp_write_timer_handler(),
// tcp_retransmit_timer(), tcp_probe_timer(), tcp_delack_timer_handler() (net/ipv4/tcp_timer.c);
// tcp_send_probe0(), tcp_write_wakeup(), tcp_xmit_probe_skb() (net/ipv4/tcp_output.c).
// Connection timers: SYN retransmission (tcp_syn_linear_timeouts then backoff) and ETIMEDOUT after
// tcp_syn_retries / tcp_retries2 / TCP_USER_TIMEOUT (tcp_write_timeout()), the zero-window probe
// abort, keepalive probes and their ETIMEDOUT (with a reset), an orphan's FIN_WAIT2 timeout,
// TIME_WAIT's end; a listener's SYN-ACK retransmissions. Simplified relative to Linux: no TLP/RACK reorder timers, no thin-stream linear
// timeouts, no pacing timer, no MTU black-hole probing.
#pragma once

#include <cstdint>

#include "stack/tcp/tcp_conn.h"
#include "stack/tcp/tcp_output.h"
#include "stack/tcp/tcp_sock.h"

namespace xmit {

// kernel: tcp_retransmit_timer() — enter loss, retransmit the rtx queue's head, back off
// (icsk_backoff++, icsk_rto doubled up to TCP_RTO_MAX) and re-arm from now; or give the
// connection up (tcp_write_timeout(): ETIMEDOUT, done() through `ops` when set).
void tcp_retransmit_timer(tcp_sock* tp, TcpXmitFn xmit, TcpOps* ops = nullptr);

// Runs every timer due at tp->tcp_mstamp: the delayed ACK, then the RTO or the zero-window probe
// (one timer, icsk_pending says which; the probe sends the head if the window now takes it, else
// a pure ACK at snd_una - 1, backing off from max(RTO, 200 ms)). kernel: the timer softirq
// calling the handlers. `ops` (may be null in tests of the established core) gets done() when a
// timer ends the connection.
void tcp_timers_run(tcp_sock* tp, TcpXmitFn xmit, TcpOps* ops);

// The earliest pending deadline (microseconds, tcp_mstamp's clock), or UINT64_MAX.
uint64_t tcp_next_timer(const tcp_sock* tp);

}  // namespace xmit
