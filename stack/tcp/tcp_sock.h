// stack/tcp/tcp_sock.h — the TCP socket state the send and receive paths read and write, and the per-skb
// control block. Kernel counterparts: struct tcp_sock (include/linux/tcp.h), struct tcp_options_received,
// struct tcp_skb_cb and TCP_SKB_CB() (include/net/tcp.h), the icsk_* fields of struct
// inet_connection_sock; struct request_sock (include/net/request_sock.h). Urgent data's receive
// state is urg_data/urg_seq (tcp_urg.h); the SACK scoreboard and congestion control are a block in the middle (tcp_sack.h, tcp_cong.h), the
// state machine's fields the last block of tcp_sock (tcp_conn.h).
#pragma once

#include <cstdint>
#include <vector>

#include "stack/base/sk_shutdown.h"
#include "stack/base/win_minmax.h"
#include "stack/ipv4/skb_queue.h"
#include "stack/skb/pool.h"
#include "stack/skb/sk_buff.h"

namespace xmit {

// kernel: TCP_NAGLE_* (include/net/tcp.h) — tp->nonagle bits.
inline constexpr uint8_t TCP_NAGLE_OFF = 1;   // TCP_NODELAY
inline constexpr uint8_t TCP_NAGLE_CORK = 2;  // TCP_CORK (or MSG_MORE for one push)
inline constexpr uint8_t TCP_NAGLE_PUSH = 4;  // push once, then back to Nagle (cleared by tcp_skb_entail())

inline constexpr uint32_t TCP_MSS_DEFAULT = 536;  // kernel: include/net/tcp.h (RFC 1122 default)
inline constexpr uint32_t TCP_MIN_SND_MSS = 48;   // kernel: sysctl_tcp_min_snd_mss default
// kernel: MAX_TCP_HEADER = L1_CACHE_ALIGN(128 + MAX_HEADER) = 320 on x86-64 distribution configs;
// only used here where the kernel subtracts it from gso_max_size (sk_dst_gso_max_size()).
inline constexpr uint32_t MAX_TCP_HEADER = 320;
// Headroom reserved in a new skb's head for the TCP, IP and Ethernet headers (20+40, 20+40, 14).
inline constexpr uint32_t kTcpHeadroom = 160;
inline constexpr uint32_t GSO_LEGACY_MAX_SIZE = 65536;  // kernel: include/linux/netdevice.h
inline constexpr uint16_t GSO_MAX_SEGS = 65535;

// kernel: struct tcp_options_received (the fields the sender uses)
struct tcp_options_received {
  bool tstamp_ok = false;   // timestamps negotiated (RFC 7323 §3)
  bool sack_ok = false;     // SACK permitted (RFC 2018)
  bool wscale_ok = false;   // window scaling negotiated (RFC 7323 §2)
  uint8_t snd_wscale = 0;   // the peer's shift: applied to windows it advertises
  uint8_t rcv_wscale = 0;   // our shift: applied to windows we advertise
  uint32_t ts_recent = 0;   // TSval to echo (TSecr)
  uint16_t mss_clamp = 0xffff;  // the peer's MSS option (or TCP_MAXSEG), caps mss
  uint16_t user_mss = 0;    // TCP_MAXSEG
  // Set by tcp_parse_options() for the segment being processed.
  bool saw_tstamp = false;
  bool saw_unknown = false;
  uint32_t rcv_tsval = 0;
  uint32_t rcv_tsecr = 0;
};

// kernel: struct tcp_skb_cb, kept in skb->cb. Sequence numbers cover the payload (+1 for SYN/FIN).
struct tcp_skb_cb {
  uint32_t seq = 0;
  uint32_t end_seq = 0;
  uint32_t ack_seq = 0;   // received segments: the ACK field (kernel: TCP_SKB_CB(skb)->ack_seq)
  uint8_t tcp_flags = 0;  // TCPHDR_*
  bool eor = false;       // MSG_EOR: never append to this skb (tcp_skb_can_collapse_to())
  uint16_t tcp_gso_segs = 0;  // kernel: tcp_skb_pcount(); 0 = not yet computed for this mss
  uint16_t tcp_gso_size = 0;
  uint8_t sacked = 0;     // TCPCB_* state of a sent skb (kernel: TCP_SKB_CB(skb)->sacked)
  uint32_t tx_delivered = 0;  // tp->delivered when last transmitted (kernel: tx.delivered, tcp_rate_skb_sent())
  uint64_t sent_us = 0;   // when it was last transmitted (kernel: skb->skb_mstamp_ns)
  // Received segments: the IP addresses (kernel: ip_hdr(skb)->saddr/daddr), set by tcp_v4_check_segment().
  be32 saddr = 0;
  be32 daddr = 0;
  // A SYN that reopens a TIME_WAIT 4-tuple: the ISN its SYN-ACK takes (kernel: tcp_tw_isn, passed
  // from tcp_timewait_state_process() to tcp_conn_request()); 0: none, init_seq() picks one.
  uint32_t tcp_tw_isn = 0;
};

// kernel: TCPCB_* bits of tcp_skb_cb::sacked, include/net/tcp.h
inline constexpr uint8_t TCPCB_SACKED_ACKED = 0x01;    // SACKed by the peer (in sacked_out; tcp_sack.h)
inline constexpr uint8_t TCPCB_SACKED_RETRANS = 0x02;  // retransmitted, not yet acked (in retrans_out)
inline constexpr uint8_t TCPCB_LOST = 0x04;            // marked lost (in lost_out)
inline constexpr uint8_t TCPCB_EVER_RETRANS = 0x80;    // retransmitted at least once (Karn: no RTT sample)
inline constexpr uint8_t TCPCB_RETRANS = TCPCB_SACKED_RETRANS | TCPCB_EVER_RETRANS;
static_assert(sizeof(tcp_skb_cb) <= sizeof(sk_buff::cb));

// One SACK block (RFC 2018 §3): at most 4 fit in 40 option bytes, 3 with timestamps.
// kernel: struct tcp_sack_block, include/linux/tcp.h
struct tcp_sack_block {
  uint32_t start_seq = 0;
  uint32_t end_seq = 0;
  bool operator==(const tcp_sack_block&) const = default;
};
inline constexpr int TCP_NUM_SACKS = 4;  // kernel: include/linux/tcp.h

struct tcp_congestion_ops;  // stack/tcp/tcp_cong.h
struct tsq_tasklet;         // stack/tcp/tcp_tsq.h

// kernel: TSQF_THROTTLED, TSQF_QUEUED (enum tsq_flags), include/linux/tcp.h — tcp_sock::sk_tsq_flags
inline constexpr uint8_t TSQF_THROTTLED = 1;  // data held for a TX completion (autocorking)
inline constexpr uint8_t TSQF_QUEUED = 2;     // on the owner's TSQ list (tcp_wfree())

// The TcpExt counters the protocol keeps (/proc/net/netstat "TcpExt:"). kernel: LINUX_MIB_*
struct LinuxMib {
  uint64_t TCPAutoCorking = 0;
  // SYN cookies and the listener's queues (tcp_syncookies.h, tcp_minisocks.cc)
  uint64_t SyncookiesSent = 0;        // cookie SYN-ACKs sent
  uint64_t SyncookiesRecv = 0;        // ACKs that carried a valid cookie
  uint64_t SyncookiesFailed = 0;      // ACKs checked as cookies that were not
  uint64_t ListenOverflows = 0;       // the accept queue was full (a SYN, or a child, dropped)
  uint64_t ListenDrops = 0;           // every SYN or final ACK a listener dropped (tcp_listendrop())
  uint64_t TCPReqQFullDoCookies = 0;  // tcp_syn_flood_action() chose a cookie
  uint64_t TCPReqQFullDrop = 0;       // tcp_syn_flood_action() dropped (tcp_syncookies = 0)
  // Connections aborted for want of memory (kernel: tcp_check_oom()); here a close() whose queued
  // MSG_ZEROCOPY bytes could not be copied into the stack's buffers (tcp_close_user_frags())
  uint64_t TCPAbortOnMemory = 0;
  // tcp_time_wait() found net.ipv4.tcp_max_tw_buckets timewait socks: the connection just closed
  uint64_t TCPTimeWaitOverflow = 0;
  // tcp_check_req() dropped a bare ACK while the listener's TCP_DEFER_ACCEPT waits for data
  uint64_t TCPDeferAcceptDrop = 0;
};

struct tcp_syncookie_secret;  // stack/tcp/tcp_syncookies.h

// kernel: TCP_SKB_CB()
inline tcp_skb_cb* TCP_SKB_CB(sk_buff* skb) { return reinterpret_cast<tcp_skb_cb*>(skb->cb); }
inline const tcp_skb_cb* TCP_SKB_CB(const sk_buff* skb) { return reinterpret_cast<const tcp_skb_cb*>(skb->cb); }

// kernel: enum inet_csk_ack_state_t, include/net/inet_connection_sock.h
inline constexpr uint8_t ICSK_ACK_SCHED = 1;
inline constexpr uint8_t ICSK_ACK_TIMER = 2;
inline constexpr uint8_t ICSK_ACK_PUSHED = 4;
inline constexpr uint8_t ICSK_ACK_PUSHED2 = 8;
inline constexpr uint8_t ICSK_ACK_NOW = 16;  // "Send the next ACK immediately (once)"

// kernel: ICSK_TIME_* (which event icsk_retransmit_timer stands for), include/net/inet_connection_sock.h
inline constexpr uint8_t ICSK_TIME_RETRANS = 1;
inline constexpr uint8_t ICSK_TIME_PROBE0 = 3;
inline constexpr uint8_t ICSK_TIME_REO_TIMEOUT = 6;  // RACK's reordering timer (tcp_rack.h)

// kernel: enum tcp_ca_state, include/uapi/linux/tcp.h
inline constexpr uint8_t TCP_CA_Open = 0;
inline constexpr uint8_t TCP_CA_Disorder = 1;
inline constexpr uint8_t TCP_CA_CWR = 2;
inline constexpr uint8_t TCP_CA_Recovery = 3;
inline constexpr uint8_t TCP_CA_Loss = 4;

// kernel: TCP_* socket states, include/net/tcp_states.h (the same values: getsockopt(TCP_INFO)
// and /proc show them), and the TCPF_* masks.
inline constexpr uint8_t TCP_ESTABLISHED = 1;
inline constexpr uint8_t TCP_SYN_SENT = 2;
inline constexpr uint8_t TCP_SYN_RECV = 3;
inline constexpr uint8_t TCP_FIN_WAIT1 = 4;
inline constexpr uint8_t TCP_FIN_WAIT2 = 5;
inline constexpr uint8_t TCP_TIME_WAIT = 6;
inline constexpr uint8_t TCP_CLOSE = 7;
inline constexpr uint8_t TCP_CLOSE_WAIT = 8;
inline constexpr uint8_t TCP_LAST_ACK = 9;
inline constexpr uint8_t TCP_LISTEN = 10;
inline constexpr uint8_t TCP_CLOSING = 11;
inline constexpr uint8_t TCP_NEW_SYN_RECV = 12;
inline constexpr uint32_t TCPF(uint8_t state) { return 1u << state; }


// A connection a listener has answered with a SYN-ACK and not yet seen the final ACK of
// (SYN_RECV). kernel: struct tcp_request_sock / inet_request_sock / request_sock
struct tcp_request_sock {
  be32 rmt_addr = 0;        // kernel: ireq->ir_rmt_addr (the peer)
  be32 loc_addr = 0;        // kernel: ireq->ir_loc_addr
  uint16_t rmt_port = 0;    // host order (ir_rmt_port)
  uint16_t loc_port = 0;
  uint32_t rcv_isn = 0;     // the peer's ISN (tcp_rsk(req)->rcv_isn)
  uint32_t snt_isn = 0;     // ours (tcp_rsk(req)->snt_isn)
  uint32_t ts_off = 0;      // tcp_rsk(req)->ts_off
  uint32_t ts_recent = 0;   // req->ts_recent: the SYN's TSval
  uint32_t rsk_rcv_wnd = 0; // the window our SYN-ACK offered (req->rsk_rcv_wnd)
  uint32_t rsk_window_clamp = 0;
  uint16_t snd_wnd = 0;     // the SYN's window field (never scaled)
  uint16_t mss = 0;         // the peer's MSS option (req->mss), TCP_MSS_DEFAULT without one
  uint8_t snd_wscale = 0, rcv_wscale = 0;
  bool tstamp_ok = false, sack_ok = false, wscale_ok = false;
  bool syncookie = false;   // answered with a cookie, not queued (req->syncookie)
  uint8_t num_retrans = 0;  // SYN-ACKs retransmitted (req->num_retrans)
  uint8_t num_timeout = 0;  // req->num_timeout
  bool acked = false;       // the peer's ACK came but made no child (inet_rsk(req)->acked): a bare
                            // ACK under TCP_DEFER_ACCEPT, or a full accept queue
  uint64_t expires = 0;     // next SYN-ACK retransmission (rsk_timer), tcp_mstamp's clock
  uint64_t snt_synack = 0;  // tcp_rsk(req)->snt_synack: first SYN-ACK's time, for the RTT sample
  uint32_t dst_mtu = 0;     // the route's MTU when the SYN came (the SYN-ACK's MSS option)
};

// A timer the owner of the clock runs (tcp_timers_run(), stack/tcp/tcp_timer.h): a deadline in
// the microseconds of tcp_mstamp. kernel: struct timer_list, sk_reset_timer(), sk_stop_timer()
struct tcp_timer {
  bool pending = false;
  uint64_t expires = 0;
};
inline void sk_reset_timer(tcp_timer* t, uint64_t expires) {
  t->pending = true;
  t->expires = expires;
}
inline void sk_stop_timer(tcp_timer* t) { t->pending = false; }

// kernel: before(), after() — sequence-space comparisons, include/net/tcp.h (RFC 9293 §3.4)
inline bool before(uint32_t seq1, uint32_t seq2) { return static_cast<int32_t>(seq1 - seq2) < 0; }
inline bool after(uint32_t seq2, uint32_t seq1) { return before(seq1, seq2); }
// kernel: between(): is seq2 <= seq1 <= seq3?
inline bool between(uint32_t seq1, uint32_t seq2, uint32_t seq3) { return seq3 - seq2 >= seq1 - seq2; }

struct tcp_sock {
  // Addressing (kernel: inet_sock / sock_common): addresses in network order as on the wire,
  // ports in host order (the kernel keeps inet_sport/inet_dport in network order).
  be32 saddr = 0;
  be32 daddr = 0;
  uint16_t sport = 0;
  uint16_t dport = 0;

  // Send sequence space (RFC 9293 §3.3.1).
  uint32_t snd_una = 0;     // oldest unacknowledged
  uint32_t snd_nxt = 0;     // next to send
  uint32_t write_seq = 0;   // tail of the data the user has written
  uint32_t pushed_seq = 0;  // write_seq at the last tcp_mark_push()
  uint32_t snd_sml = 0;     // end of the last small segment sent (Minshall's Nagle)
  uint32_t snd_wnd = 0;     // the peer's window, already scaled
  uint32_t max_window = 0;  // largest snd_wnd seen
  uint32_t snd_cwnd = 10;   // congestion window, in segments (kernel: TCP_INIT_CWND)
  uint32_t snd_ssthresh = 0x7fffffff;  // kernel: TCP_INFINITE_SSTHRESH
  uint32_t snd_cwnd_cnt = 0;    // ACKed segments towards the next +1 in congestion avoidance
  uint32_t snd_cwnd_clamp = 0xffffffff;
  uint32_t high_seq = 0;        // snd_nxt when recovery or loss began
  uint8_t icsk_ca_state = 0;    // TCP_CA_*
  bool is_cwnd_limited = false; // kernel: tcp_cwnd_validate()'s record for the current window
  uint32_t max_packets_out = 0;
  uint32_t cwnd_usage_seq = 0;
  uint32_t packets_out = 0; // segments sent and not acked
  uint32_t lost_out = 0;    // of those, marked lost (TCPCB_LOST)
  uint32_t retrans_out = 0; // of those, retransmitted and not yet acked (TCPCB_SACKED_RETRANS)
  uint32_t sacked_out = 0;  // without SACK: the duplicate ACKs counted (kernel: tcp_add_reno_sack())
  uint32_t snd_up = 0;      // urgent pointer: the sequence after the last MSG_OOB byte (== snd_una: none)

  // SACK scoreboard and congestion control (tcp_sack.h, tcp_cong.h)
  // Receiver: the blocks our ACKs carry (kernel: tp->rx_opt.num_sacks, tp->rx_opt.dsack,
  // tp->duplicate_sack, tp->selective_acks), most recent first.
  uint8_t num_sacks = 0;
  bool dsack = false;
  tcp_sack_block duplicate_sack[1];
  tcp_sack_block selective_acks[TCP_NUM_SACKS];
  // Sender: reordering degree in segments and how often reordering was seen (kernel:
  // tp->reordering, tp->reord_seen), the RACK state (kernel: tp->rack), the minimum RTT over the
  // last net.ipv4.tcp_min_rtt_wlen seconds (kernel: tp->rtt_min, a win_minmax filter in jiffies,
  // tcp_min_rtt(); ~0 before any sample), PRR (kernel: tp->prior_cwnd, prr_delivered, prr_out),
  // segments delivered (kernel: tp->delivered).
  uint32_t reordering = 3;   // kernel: sysctl_tcp_reordering
  uint32_t reord_seen = 0;
  struct {
    uint64_t mstamp = 0;     // send time of the most recently sent segment (s)acked
    uint32_t rtt_us = 0;     // its RTT
    uint32_t end_seq = 0;    // its end_seq
    bool advanced = false;   // mstamp moved since the last loss scan
  } rack;
  minmax rtt_min = {{{0, ~0u}, {0, ~0u}, {0, ~0u}}};  // kernel: minmax_reset(&tp->rtt_min, t, ~0U)
  uint32_t sysctl_tcp_min_rtt_wlen = 300;  // seconds (kernel: net.ipv4.tcp_min_rtt_wlen)
  uint32_t prior_cwnd = 0;
  uint32_t prr_delivered = 0;
  uint32_t prr_out = 0;
  uint32_t delivered = 0;
  // Congestion control: the ops (null: Linux's default, CUBIC) and their private state (kernel:
  // icsk_ca_ops, icsk_ca_priv[]).
  const tcp_congestion_ops* icsk_ca_ops = nullptr;
  uint64_t icsk_ca_priv[13] = {};

  // Receive side (RFC 9293 §3.3.1).
  uint32_t rcv_nxt = 0;
  uint32_t rcv_wnd = 0;     // the window last advertised
  uint32_t rcv_wup = 0;     // rcv_nxt at the last window update (kernel: tcp_select_window())
  uint32_t copied_seq = 0;  // head of the data not yet read by the user
  // Urgent data received (tcp_urg.h): TCP_URG_* state with the byte in the low 8 bits once it
  // arrived, and the byte's sequence (kernel: tp->urg_data, tp->urg_seq); SO_OOBINLINE (kernel:
  // sock_flag(sk, SOCK_URGINLINE)).
  uint16_t urg_data = 0;
  uint32_t urg_seq = 0;
  bool sock_urginline = false;
  bool sigurg_pending = false;  // a new urgent pointer: sk_send_sigurg() is the owner's to do
  // Receive memory in payload bytes (the kernel counts truesize scaled by scaling_ratio:
  // tcp_win_from_space()). rcvbuf 0: no receive path configured — the advertised window is
  // rcv_wnd as set (the output-only tests). No autotuning (tcp_rcv_space_adjust), no rcv_ssthresh
  // growth (tcp_grow_window): the window offers all free space up to window_clamp.
  uint32_t rcvbuf = 0;      // kernel: sk_rcvbuf
  uint32_t rmem_alloc = 0;  // kernel: sk_rmem_alloc — bytes in receive_queue and out_of_order_queue
  uint32_t window_clamp = 65535u << 14;
  uint16_t advmss = 1460;   // the MSS we announced (kernel: tp->advmss)
  // kernel: inet_csk(sk)->icsk_ack — delayed-ACK state; times in jiffies (ms, HZ = 1000).
  struct {
    uint8_t pending = 0;    // ICSK_ACK_*
    uint8_t quick = 0;      // quick ACKs left
    uint8_t pingpong = 0;   // replies sent within ato of data: interactive from sysctl_tcp_pingpong_thresh on
    uint32_t ato = 0;       // delayed-ACK timeout, ms
    uint32_t timeout = 0;   // when the delayed ACK is due, ms
    uint32_t lrcvtime = 0;  // when data last arrived, ms
    uint32_t rcv_mss = 0;   // estimate of the peer's MSS
  } icsk_ack;
  tcp_timer icsk_delack_timer;
  SkbQueue receive_queue;        // in order, from copied_seq (kernel: sk_receive_queue)
  SkbQueue out_of_order_queue;   // sorted by seq (kernel: an rbtree; a list here)

  // MSS (kernel: tp->mss_cache, tp->tcp_header_len, icsk->icsk_pmtu_cookie, icsk_ext_hdr_len).
  uint32_t mss_cache = TCP_MSS_DEFAULT;
  uint16_t tcp_header_len = 20;  // 20, or 32 with timestamps: what mss_cache has room for
  uint32_t pmtu_cookie = 0;      // the path MTU mss_cache was computed from
  uint16_t ext_hdr_len = 0;      // IP options length
  uint16_t net_header_len = 20;  // kernel: icsk_af_ops->net_header_len (IPv4)

  // GSO (kernel: sk_gso_max_size, sk_gso_max_segs, tp->gso_segs; set by tcp_sk_setup_caps()).
  uint32_t gso_max_size = 0;     // 0: no GSO — size_goal is one MSS
  uint16_t gso_max_segs = GSO_MAX_SEGS;
  uint16_t gso_segs = 0;         // size_goal / mss, cached by tcp_xmit_size_goal()
  bool hw_csum = false;          // the device finishes the checksum (CHECKSUM_PARTIAL)
  // The device reads the program's memory in place (NetdevFeatures::sg_user; the kernel's
  // sk_route_caps & NETIF_F_SG for MSG_ZEROCOPY), and how many fragments an skb of user pages may
  // have so that head + fragments stay within its scatter-gather entries (max_segs - 1).
  bool sg_user = false;
  uint8_t sg_max_frags = 0;

  tcp_options_received rx_opt;
  uint8_t nonagle = 0;           // TCP_NAGLE_* bits
  uint32_t tsoffset = 0;         // added to the clock for TSval (kernel: tp->tsoffset)
  uint64_t tcp_mstamp = 0;       // "now" in microseconds, injected (kernel: tp->tcp_mstamp)
  uint64_t tcp_wstamp_us = 0;    // when the last segment was transmitted (kernel: tp->tcp_wstamp_ns; no EDT)
  uint32_t srtt_us = 0;          // smoothed RTT << 3 (kernel: tp->srtt_us), 0 before the first sample

  // RTT estimator and RTO (kernel: tp->mdev_us, mdev_max_us, rttvar_us, rtt_seq; icsk_rto,
  // icsk_backoff, icsk_retransmits). RTO in microseconds, always a whole number of ms (HZ=1000).
  uint32_t mdev_us = 0;          // mean deviation << 2
  uint32_t mdev_max_us = 0;      // largest mdev of the last RTT
  uint32_t rttvar_us = 0;        // smoothed mdev_max
  uint32_t rtt_seq = 0;          // sequence number ending the current RTT
  uint32_t icsk_rto = 1000000;   // kernel: TCP_TIMEOUT_INIT (1 s, RFC 6298 §2.1)
  uint8_t icsk_backoff = 0;
  uint8_t icsk_retransmits = 0;
  uint32_t snd_wl1 = 0;          // seq of the segment that last updated snd_wnd (RFC 9293 SND.WL1)
  uint32_t ts_recent_stamp = 0;  // seconds, when ts_recent was stored (kernel: ktime_get_seconds())
  tcp_timer icsk_retransmit_timer;  // RTO or zero-window probe, as icsk_pending says
  uint8_t icsk_pending = 0;         // ICSK_TIME_RETRANS, ICSK_TIME_PROBE0 or 0
  uint8_t icsk_probes_out = 0;      // zero-window probes sent unanswered

  // Where skbs and payload buffers come from (kernel: the slab and sk_page_frag()); the socket's
  // current payload buffer and how much of it is used.
  SkbPool* skb_pool = nullptr;
  BufPool* page_pool = nullptr;
  uint8_t* pfrag_page = nullptr;  // one reference held while set
  uint32_t pfrag_offset = 0;

  // Queues. write_queue holds unsent skbs from send_head on; rtx_queue the sent, unacked ones
  // (kernel: sk_write_queue and the tcp_rtx_queue rbtree — a list suffices without SACK).
  SkbQueue write_queue;
  SkbQueue rtx_queue;

  // Autocorking and the device's hold on our skbs (tcp_tsq.h). sk_wmem_alloc: 1 while the socket
  // lives plus the truesize of every transmitted skb not yet freed by its TX completion (kernel:
  // sk->sk_wmem_alloc); sk_tsq_flags: TSQF_*; tsq: the owner's list tcp_wfree() queues a throttled
  // socket on (null: nobody runs tcp_tsq_write(), so nothing is autocorked); tsq_node: its link.
  uint32_t sk_wmem_alloc = 1;
  uint8_t sk_tsq_flags = 0;
  bool sysctl_tcp_autocorking = true;  // net.ipv4.tcp_autocorking, set by the owner
  uint8_t sysctl_tcp_pingpong_thresh = 1;  // net.ipv4.tcp_pingpong_thresh, set by the owner
  tsq_tasklet* tsq = nullptr;
  tcp_sock* tsq_node = nullptr;
  // TCP Small Queues' limit (tcp_small_queue_check(), tcp_tsq.h) and the pacing rate it and TSO
  // autosizing read (tcp_update_pacing_rate(), tcp_ack.h), in bytes per second. kernel:
  // sk->sk_pacing_rate and sk_max_pacing_rate (~0 until the first update, sock_init_data()),
  // sk_pacing_shift (10: about 1 ms of the rate), net.ipv4.tcp_limit_output_bytes,
  // tcp_pacing_ss_ratio and tcp_pacing_ca_ratio (percent), set by the owner. No pacing itself:
  // sk_pacing_status stays SK_PACING_NONE (CUBIC, no fq qdisc), so the sysctl always caps TSQ.
  uint64_t sk_pacing_rate = ~0ull;
  uint64_t sk_max_pacing_rate = ~0ull;
  uint8_t sk_pacing_shift = 10;
  uint32_t sysctl_tcp_limit_output_bytes = 4194304;
  uint32_t sysctl_tcp_pacing_ss_ratio = 200;
  uint32_t sysctl_tcp_pacing_ca_ratio = 120;
  // TSO autosizing (tcp_tso_segs(), tcp_output.h): net.ipv4.tcp_min_tso_segs and tcp_tso_rtt_log
  // (the min RTT, in 2^log µs, that halves the gso_max_size allowance), set by the owner.
  uint8_t sysctl_tcp_min_tso_segs = 2;
  uint8_t sysctl_tcp_tso_rtt_log = 9;
  LinuxMib* net_mib = nullptr;  // the owner's TcpExt counters (kernel: sock_net(sk)->mib); may be null

  // Connection state (tcp_conn.h)
  // max(net.ipv4.tcp_rmem[2], net.core.rmem_max): the window scale offered in the SYN
  // (tcp_select_initial_window()); the owner sets the host's values (defaults: 6 MiB, 212992).
  uint32_t sysctl_rmem_max = 6291456;
  uint8_t sk_state = TCP_CLOSE;  // TCP_*
  int sk_err = 0;          // pending error (ECONNREFUSED, ECONNRESET, ETIMEDOUT, EPIPE), positive
  int sk_err_soft = 0;     // the last soft error (kernel: sk->sk_err_soft)
  uint8_t sk_shutdown = 0; // RCV_SHUTDOWN (FIN received or shutdown(SHUT_RD)) | SEND_SHUTDOWN
  bool sock_dead = false;  // the user closed it (kernel: SOCK_DEAD, an orphan)
  bool sock_done = false;  // a FIN was received (kernel: SOCK_DONE, set by tcp_fin())
  int linger = -1;         // SO_LINGER: -1 off, else seconds (0: close() resets)
  uint8_t icsk_syn_retries = 0;  // TCP_SYNCNT; 0: sysctl_tcp_syn_retries (6)
  uint32_t icsk_user_timeout = 0;  // TCP_USER_TIMEOUT, ms; 0: off
  int linger2 = 0;         // TCP_LINGER2 seconds; 0: sysctl_tcp_fin_timeout, < 0: no FIN_WAIT2 wait
  uint32_t sysctl_tcp_fin_timeout = 60;  // net.ipv4.tcp_fin_timeout, seconds, set by the owner
  uint32_t retrans_stamp = 0;  // ms, first (re)transmission of the oldest unacked segment (tcp_write_timeout)
  uint32_t total_retrans = 0;  // segments retransmitted (kernel: tp->total_retrans)
  uint32_t total_rto = 0;      // RTO expirations (kernel: tp->total_rto)
  // TCP_INFO's counters (tcp_get_info(), stack/tcp/tcp_info.cc), kept where the kernel keeps
  // them: RTO recoveries begun and the ms spent in them (kernel: total_rto_recoveries,
  // total_rto_time, rto_stamp: tcp_update_rto_stats(), tcp_update_rto_time()), RTOs that rehashed
  // (kernel: timeout_rehash, tcp_write_timeout(); net.core.txrehash = 1), bytes the peer acked
  // (tcp_snd_una_update(): the SYN's 1 included), bytes received in order (tcp_rcv_nxt_update()),
  // payload bytes sent and retransmitted (__tcp_transmit_skb(), __tcp_retransmit_skb()), segments
  // in and out and those with data (tcp_segs_in(), __tcp_transmit_skb()), the segments DSACKs
  // reported (tcp_dsack_seen()), segments queued out of order (tcp_data_queue_ofo()), and when
  // data was last sent (kernel: lsndtime, jiffies).
  uint16_t total_rto_recoveries = 0;
  uint32_t total_rto_time = 0;
  uint32_t rto_stamp = 0;
  uint32_t timeout_rehash = 0;
  uint64_t bytes_acked = 0;
  uint64_t bytes_received = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_retrans = 0;
  uint32_t segs_in = 0;
  uint32_t data_segs_in = 0;
  uint32_t segs_out = 0;
  uint32_t data_segs_out = 0;
  uint32_t dsack_dups = 0;
  uint32_t rcv_ooopack = 0;
  uint32_t lsndtime = 0;
  // kernel: rcvq_space.space as tcp_init_buffer_space() sets it at tcp_init_transfer(),
  // "min3(rcv_ssthresh, rcv_wnd, TCP_INIT_CWND * advmss)" (no rcv_ssthresh here); never grown (no
  // tcp_rcv_space_adjust()). TCP_INFO's tcpi_rcv_space.
  uint32_t rcvq_space = 0;
  // Which limit the sender is under since when, and the jiffies spent under each so far (kernel:
  // chrono_type, chrono_start, chrono_stat[]: tcp_chrono_start/stop(), stack/tcp/tcp_info.h).
  uint8_t chrono_type = 0;
  uint32_t chrono_start = 0;
  uint32_t chrono_stat[3] = {};
  uint32_t last_oow_ack_time = 0;  // ms, last challenge/out-of-window ACK (tcp_oow_rate_limited)
  uint32_t sndbuf = 0;     // SO_SNDBUF for tcp_poll()'s POLLOUT stand-in; 0: always writeable
  uint32_t notsent_lowat = 0;  // TCP_NOTSENT_LOWAT; 0: sysctl_notsent_lowat
  uint32_t sysctl_notsent_lowat = UINT32_MAX;  // net.ipv4.tcp_notsent_lowat, set by the owner
  tcp_timer sk_timer;      // keepalive, or an orphan's FIN_WAIT2 wait beyond TCP_TIMEWAIT_LEN (kernel: icsk_keepalive_timer)
  bool sock_keepopen = false;    // SO_KEEPALIVE (kernel: SOCK_KEEPOPEN)
  uint32_t keepalive_time = 0;   // TCP_KEEPIDLE, s; 0: sysctl_tcp_keepalive_time (7200)
  uint32_t keepalive_intvl = 0;  // TCP_KEEPINTVL, s; 0: sysctl_tcp_keepalive_intvl (75)
  uint8_t keepalive_probes = 0;  // TCP_KEEPCNT; 0: sysctl_tcp_keepalive_probes (9)
  uint32_t rcv_tstamp = 0;       // ms, when the last ACK came (kernel: tp->rcv_tstamp)
  tcp_timer tw_timer;      // tcp_time_wait()'s deadline (TIME_WAIT, or an orphan's FIN_WAIT2) while its owner keeps it
  // Listener (kernel: inet_csk(sk)->icsk_accept_queue, sk_max_ack_backlog, sk_ack_backlog).
  int sk_max_ack_backlog = 0;
  int sk_ack_backlog = 0;  // children on the accept queue
  std::vector<tcp_request_sock> reqsk_queue;  // SYN_RECV requests (kernel: in ehash); <= backlog
  // TCP_DEFER_ACCEPT as SYN-ACK retransmissions (kernel: icsk_accept_queue.rskq_defer_accept,
  // secs_to_retrans()): a bare final ACK makes no child until data comes or these run out.
  uint8_t rskq_defer_accept = 0;
  tcp_sock* accept_head = nullptr;  // established children, oldest first
  tcp_sock* accept_tail = nullptr;
  tcp_sock* accept_next = nullptr;  // a child's link in its listener's accept queue
  tcp_sock* listener = nullptr;     // a child's listener while it is on the accept queue
  // SYN cookies (tcp_syncookies.h): net.ipv4.tcp_syncookies (0 never, 1 when the request queue is
  // full, 2 always; set by the owner), the owner's secret (null: an all-zero key), the last
  // request-queue overflow in jiffies (kernel: a listener's rx_opt.ts_recent_stamp, written by
  // tcp_synq_overflow(); synq_overflowed false: none yet), the flood warning's once-per-listener
  // flag (kernel: icsk_accept_queue.synflood_warned).
  uint8_t sysctl_tcp_syncookies = 1;
  const tcp_syncookie_secret* syncookie_secret = nullptr;
  bool synq_overflowed = false;
  uint32_t synq_overflow_ts = 0;
  bool synflood_warned = false;
};

// kernel: tcp_write_queue_tail(), tcp_send_head(), tcp_write_queue_empty(), tcp_rtx_queue_empty()
inline sk_buff* tcp_write_queue_tail(const tcp_sock* tp) { return tp->write_queue.tail; }
inline sk_buff* tcp_send_head(const tcp_sock* tp) { return tp->write_queue.head; }
inline bool tcp_write_queue_empty(const tcp_sock* tp) { return tp->write_seq == tp->snd_nxt; }
inline bool tcp_rtx_queue_empty(const tcp_sock* tp) { return skb_queue_empty(tp->rtx_queue); }
// kernel: tcp_wnd_end() — the right edge of the peer's window.
inline uint32_t tcp_wnd_end(const tcp_sock* tp) { return tp->snd_una + tp->snd_wnd; }
// kernel: tcp_left_out(), tcp_packets_in_flight() — "packets_out - left_out + retrans_out"
inline uint32_t tcp_left_out(const tcp_sock* tp) { return tp->sacked_out + tp->lost_out; }
inline uint32_t tcp_packets_in_flight(const tcp_sock* tp) {
  return tp->packets_out - tcp_left_out(tp) + tp->retrans_out;
}
// kernel: tcp_skb_pcount()
inline uint32_t tcp_skb_pcount(const sk_buff* skb) { return TCP_SKB_CB(skb)->tcp_gso_segs; }

// kernel: tcp_notsent_lowat() and __tcp_stream_memory_free(), include/net/tcp.h — may a new skb
// be queued (wake 0), or is the socket writeable for poll (wake 1: half the limit)?
inline uint32_t tcp_notsent_lowat(const tcp_sock* tp) {
  return tp->notsent_lowat != 0 ? tp->notsent_lowat : tp->sysctl_notsent_lowat;
}
inline bool tcp_stream_memory_free(const tcp_sock* tp, int wake) {
  const uint64_t notsent_bytes = tp->write_seq - tp->snd_nxt;
  return (notsent_bytes << wake) < tcp_notsent_lowat(tp);
}

}  // namespace xmit
