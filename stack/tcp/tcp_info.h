// stack/tcp/tcp_info.h — getsockopt(TCP_INFO): Linux 6.18's struct tcp_info (include/uapi/linux/tcp.h,
// 280 bytes; glibc's header stops at tcpi_total_retrans) and tcp_get_info() (net/ipv4/tcp.c).
#pragma once

#include <cstddef>
#include <cstdint>

#include "stack/tcp/tcp_sock.h"

namespace xmit {

// kernel: struct tcp_info, include/uapi/linux/tcp.h (Linux 6.18), field for field.
struct tcp_info_kernel {
  uint8_t tcpi_state;
  uint8_t tcpi_ca_state;
  uint8_t tcpi_retransmits;
  uint8_t tcpi_probes;
  uint8_t tcpi_backoff;
  uint8_t tcpi_options;
  uint8_t tcpi_snd_wscale : 4, tcpi_rcv_wscale : 4;
  uint8_t tcpi_delivery_rate_app_limited : 1, tcpi_fastopen_client_fail : 2;

  uint32_t tcpi_rto;
  uint32_t tcpi_ato;
  uint32_t tcpi_snd_mss;
  uint32_t tcpi_rcv_mss;

  uint32_t tcpi_unacked;
  uint32_t tcpi_sacked;
  uint32_t tcpi_lost;
  uint32_t tcpi_retrans;
  uint32_t tcpi_fackets;

  // Times
  uint32_t tcpi_last_data_sent;
  uint32_t tcpi_last_ack_sent;  // "Not remembered, sorry."
  uint32_t tcpi_last_data_recv;
  uint32_t tcpi_last_ack_recv;

  // Metrics
  uint32_t tcpi_pmtu;
  uint32_t tcpi_rcv_ssthresh;
  uint32_t tcpi_rtt;
  uint32_t tcpi_rttvar;
  uint32_t tcpi_snd_ssthresh;
  uint32_t tcpi_snd_cwnd;
  uint32_t tcpi_advmss;
  uint32_t tcpi_reordering;

  uint32_t tcpi_rcv_rtt;
  uint32_t tcpi_rcv_space;

  uint32_t tcpi_total_retrans;

  uint64_t tcpi_pacing_rate;
  uint64_t tcpi_max_pacing_rate;
  uint64_t tcpi_bytes_acked;     // RFC4898 tcpEStatsAppHCThruOctetsAcked
  uint64_t tcpi_bytes_received;  // RFC4898 tcpEStatsAppHCThruOctetsReceived
  uint32_t tcpi_segs_out;        // RFC4898 tcpEStatsPerfSegsOut
  uint32_t tcpi_segs_in;         // RFC4898 tcpEStatsPerfSegsIn

  uint32_t tcpi_notsent_bytes;
  uint32_t tcpi_min_rtt;
  uint32_t tcpi_data_segs_in;   // RFC4898 tcpEStatsDataSegsIn
  uint32_t tcpi_data_segs_out;  // RFC4898 tcpEStatsDataSegsOut

  uint64_t tcpi_delivery_rate;

  uint64_t tcpi_busy_time;       // usec busy sending data
  uint64_t tcpi_rwnd_limited;    // usec limited by receive window
  uint64_t tcpi_sndbuf_limited;  // usec limited by send buffer

  uint32_t tcpi_delivered;
  uint32_t tcpi_delivered_ce;

  uint64_t tcpi_bytes_sent;     // RFC4898 tcpEStatsPerfHCDataOctetsOut
  uint64_t tcpi_bytes_retrans;  // RFC4898 tcpEStatsPerfOctetsRetrans
  uint32_t tcpi_dsack_dups;     // RFC4898 tcpEStatsStackDSACKDups
  uint32_t tcpi_reord_seen;     // reordering events seen

  uint32_t tcpi_rcv_ooopack;  // out-of-order packets received

  uint32_t tcpi_snd_wnd;  // the peer's advertised receive window after scaling (bytes)
  uint32_t tcpi_rcv_wnd;  // the local advertised receive window after scaling (bytes)

  uint32_t tcpi_rehash;  // PLB or timeout triggered rehash attempts

  uint16_t tcpi_total_rto;             // RTO timeouts, including SYN/SYN-ACK and recurring
  uint16_t tcpi_total_rto_recoveries;  // RTO recoveries, including any unfinished one
  uint32_t tcpi_total_rto_time;        // ms spent in RTO recoveries, including any unfinished one

  // Accurate ECN (Linux 6.18): all 0 without AccECN, as here.
  uint32_t tcpi_received_ce;  // CE marks received
  uint32_t tcpi_delivered_e1_bytes;
  uint32_t tcpi_delivered_e0_bytes;
  uint32_t tcpi_delivered_ce_bytes;
  uint32_t tcpi_received_e1_bytes;
  uint32_t tcpi_received_e0_bytes;
  uint32_t tcpi_received_ce_bytes;
  uint16_t tcpi_accecn_fail_mode;
  uint16_t tcpi_accecn_opt_seen;
};
static_assert(offsetof(tcp_info_kernel, tcpi_rto) == 8 && offsetof(tcp_info_kernel, tcpi_pacing_rate) == 104 &&
                  offsetof(tcp_info_kernel, tcpi_bytes_acked) == 120 &&
                  offsetof(tcp_info_kernel, tcpi_delivery_rate) == 160 &&
                  offsetof(tcp_info_kernel, tcpi_total_rto_time) == 244 && sizeof(tcp_info_kernel) == 280,
              "Linux 6.18's struct tcp_info: getsockopt(TCP_INFO) answers 280 bytes");

// kernel: TCPI_OPT_*, include/uapi/linux/tcp.h
inline constexpr uint8_t TCPI_OPT_TIMESTAMPS_K = 1;
inline constexpr uint8_t TCPI_OPT_SACK_K = 2;
inline constexpr uint8_t TCPI_OPT_WSCALE_K = 4;

// kernel: enum tcp_chrono, include/net/tcp.h — what the sender is limited by, most interesting last.
inline constexpr uint8_t TCP_CHRONO_UNSPEC = 0;
inline constexpr uint8_t TCP_CHRONO_BUSY = 1;            // actively sending data (non-empty write queue)
inline constexpr uint8_t TCP_CHRONO_RWND_LIMITED = 2;    // stalled by insufficient receive window
inline constexpr uint8_t TCP_CHRONO_SNDBUF_LIMITED = 3;  // stalled by insufficient send buffer (not kept here)

// kernel: tcp_chrono_start(), tcp_chrono_stop(), net/ipv4/tcp_output.c — BUSY from the first skb
// queued (tcp_skb_entail()) until the retransmit queue empties (tcp_clean_rtx_queue()),
// RWND_LIMITED while tcp_write_xmit() stops at the peer's window.
void tcp_chrono_start(tcp_sock* tp, uint8_t type);
void tcp_chrono_stop(tcp_sock* tp, uint8_t type);

// kernel: tcp_get_info() — `info` zeroed and filled from `tp` at `now_ms` (tcp_jiffies32 of now;
// the stack's clock may lag the socket's tcp_mstamp). Listeners answer the aliased fields only
// (tcpi_unacked: children ready for accept(), tcpi_sacked: the backlog). What the stack does not
// keep reads 0 as on a kernel without it: tcpi_delivery_rate and its app_limited bit (no
// tcp_rate.c delivery-rate sampler), tcpi_sndbuf_limited (no SOCK_NOSPACE chrono), tcpi_rcv_rtt (no rcv_rtt_est), tcpi_delivered_ce and the AccECN fields (no ECN);
// tcpi_rcv_ssthresh is the offered window (no rcv_ssthresh: tcp_sock.h), tcpi_rcv_space the
// initial rcvq_space (no autotuning).
void tcp_get_info(const tcp_sock* tp, uint32_t now_ms, tcp_info_kernel* info);

}  // namespace xmit
