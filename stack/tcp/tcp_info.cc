// stack/tcp/tcp_info.cc — getsockopt(TCP_INFO). Kernel counterpart: tcp_get_info(), net/ipv4/tcp.c.
#include "stack/tcp/tcp_info.h"

#include <algorithm>
#include <cstring>

#include "stack/tcp/tcp_output_ack.h"
#include "stack/tcp/tcp_rack.h"

namespace xmit {

inline constexpr uint32_t TCP_DELACK_MAX_MS = 200;  // kernel: TCP_DELACK_MAX, tcp_delack_max()

// kernel: tcp_chrono_set()
static void tcp_chrono_set(tcp_sock* tp, uint8_t type) {
  const uint32_t now = tcp_jiffies32(tp);
  if (tp->chrono_type > TCP_CHRONO_UNSPEC) tp->chrono_stat[tp->chrono_type - 1] += now - tp->chrono_start;
  tp->chrono_start = now;
  tp->chrono_type = type;
}

void tcp_chrono_start(tcp_sock* tp, uint8_t type) {
  // "If there are multiple conditions worthy of tracking in a chronograph then the highest
  // priority enum takes precedence over the other conditions."
  if (type > tp->chrono_type) tcp_chrono_set(tp, type);
}

void tcp_chrono_stop(tcp_sock* tp, uint8_t type) {
  // "If a condition stops, we only stop chrono tracking if it's the "most interesting" or current
  // chrono we are tracking and starts busy chrono if we have pending data."
  if (tp->rtx_queue.head == nullptr && tp->write_queue.head == nullptr) {  // tcp_rtx_and_write_queues_empty()
    tcp_chrono_set(tp, TCP_CHRONO_UNSPEC);
  } else if (type == tp->chrono_type) {
    tcp_chrono_set(tp, TCP_CHRONO_BUSY);
  }
}

// kernel: tcp_get_info_chrono_stats() — µs (HZ = 1000: a jiffy is 1000 µs)
static void tcp_get_info_chrono_stats(const tcp_sock* tp, uint32_t now_ms, tcp_info_kernel* info) {
  uint64_t stats[4] = {}, total = 0;
  for (uint8_t i = TCP_CHRONO_BUSY; i <= TCP_CHRONO_SNDBUF_LIMITED; ++i) {
    stats[i] = tp->chrono_stat[i - 1];
    if (i == tp->chrono_type) stats[i] += now_ms - tp->chrono_start;
    stats[i] *= 1000;
    total += stats[i];
  }
  info->tcpi_busy_time = total;
  info->tcpi_rwnd_limited = stats[TCP_CHRONO_RWND_LIMITED];
  info->tcpi_sndbuf_limited = stats[TCP_CHRONO_SNDBUF_LIMITED];
}

// kernel: tcp_get_info(), net/ipv4/tcp.c
void tcp_get_info(const tcp_sock* tp, uint32_t now_ms, tcp_info_kernel* info) {
  std::memset(info, 0, sizeof *info);
  info->tcpi_state = tp->sk_state;
  // "Report meaningful fields for all TCP states, including listeners"; ~0 (unset) stays ~0ULL
  info->tcpi_pacing_rate = tp->sk_pacing_rate;
  info->tcpi_max_pacing_rate = tp->sk_max_pacing_rate;
  info->tcpi_reordering = tp->reordering;
  info->tcpi_snd_cwnd = tp->snd_cwnd;
  if (tp->sk_state == TCP_LISTEN) {
    // "listeners aliased fields: tcpi_unacked -> Number of children ready for accept(),
    // tcpi_sacked -> max backlog"
    info->tcpi_unacked = static_cast<uint32_t>(tp->sk_ack_backlog);
    info->tcpi_sacked = static_cast<uint32_t>(tp->sk_max_ack_backlog);
    return;
  }
  info->tcpi_ca_state = tp->icsk_ca_state;
  info->tcpi_retransmits = tp->icsk_retransmits;
  info->tcpi_probes = tp->icsk_probes_out;
  info->tcpi_backoff = tp->icsk_backoff;
  if (tp->rx_opt.tstamp_ok) info->tcpi_options |= TCPI_OPT_TIMESTAMPS_K;
  if (tp->rx_opt.sack_ok) info->tcpi_options |= TCPI_OPT_SACK_K;  // tcp_is_sack()
  if (tp->rx_opt.wscale_ok) {
    info->tcpi_options |= TCPI_OPT_WSCALE_K;
    info->tcpi_snd_wscale = tp->rx_opt.snd_wscale & 0xf;
    info->tcpi_rcv_wscale = tp->rx_opt.rcv_wscale & 0xf;
  }
  // No ECN, no Fast Open, millisecond timestamps: no TCPI_OPT_ECN, _ECN_SEEN, _SYN_DATA, _USEC_TS,
  // _TFO_CHILD.
  info->tcpi_rto = tp->icsk_rto;  // µs already (jiffies_to_usecs(icsk_rto))
  info->tcpi_ato = std::min(tp->icsk_ack.ato, TCP_DELACK_MAX_MS) * 1000;
  info->tcpi_snd_mss = tp->mss_cache;
  info->tcpi_rcv_mss = tp->icsk_ack.rcv_mss;
  info->tcpi_unacked = tp->packets_out;
  info->tcpi_sacked = tp->sacked_out;
  info->tcpi_lost = tp->lost_out;
  info->tcpi_retrans = tp->retrans_out;
  info->tcpi_last_data_sent = now_ms - tp->lsndtime;
  info->tcpi_last_data_recv = now_ms - tp->icsk_ack.lrcvtime;
  info->tcpi_last_ack_recv = now_ms - tp->rcv_tstamp;
  info->tcpi_pmtu = tp->pmtu_cookie;
  info->tcpi_rcv_ssthresh = tp->rcv_wnd;
  info->tcpi_rtt = tp->srtt_us >> 3;
  info->tcpi_rttvar = tp->mdev_us >> 2;
  info->tcpi_snd_ssthresh = tp->snd_ssthresh;
  info->tcpi_advmss = tp->advmss;
  info->tcpi_rcv_rtt = 0;
  info->tcpi_rcv_space = tp->rcvq_space;  // set once (tcp_sock.h): not the window offered now
  info->tcpi_total_retrans = tp->total_retrans;
  info->tcpi_bytes_acked = tp->bytes_acked;
  info->tcpi_bytes_received = tp->bytes_received;
  info->tcpi_notsent_bytes = static_cast<uint32_t>(std::max(0, static_cast<int32_t>(tp->write_seq - tp->snd_nxt)));
  tcp_get_info_chrono_stats(tp, now_ms, info);
  info->tcpi_segs_out = tp->segs_out;
  info->tcpi_segs_in = tp->segs_in;
  info->tcpi_min_rtt = tcp_min_rtt(tp);
  info->tcpi_data_segs_in = tp->data_segs_in;
  info->tcpi_data_segs_out = tp->data_segs_out;
  info->tcpi_delivered = tp->delivered;
  info->tcpi_bytes_sent = tp->bytes_sent;
  info->tcpi_bytes_retrans = tp->bytes_retrans;
  info->tcpi_dsack_dups = tp->dsack_dups;
  info->tcpi_reord_seen = tp->reord_seen;
  info->tcpi_rcv_ooopack = tp->rcv_ooopack;
  info->tcpi_snd_wnd = tp->snd_wnd;
  info->tcpi_rcv_wnd = tp->rcv_wnd;
  info->tcpi_rehash = tp->timeout_rehash;  // + plb_rehash (no PLB)
  info->tcpi_total_rto = static_cast<uint16_t>(tp->total_rto);
  info->tcpi_total_rto_recoveries = tp->total_rto_recoveries;
  info->tcpi_total_rto_time = tp->total_rto_time;
  if (tp->rto_stamp != 0) info->tcpi_total_rto_time += now_ms - tp->rto_stamp;
}

}  // namespace xmit
