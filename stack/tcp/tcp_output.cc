// stack/tcp/tcp_output.cc — tcp_write_xmit() and what it calls. Kernel counterparts in tcp_output.h.
#include "stack/tcp/tcp_output.h"

#include <netinet/in.h>  // IPPROTO_TCP

#include <algorithm>
#include <cerrno>

#include "stack/tcp/tcp_ack.h"
#include "stack/tcp/tcp_info.h"
#include "stack/tcp/tcp_options.h"
#include "stack/tcp/tcp_sack.h"
#include "stack/tcp/tcp_output_ack.h"
#include "stack/tcp/tcp_rack.h"
#include "stack/tcp/tcp_recovery.h"
#include "stack/tcp/tcp_tsq.h"
#include "stack/wire/tcp.h"

namespace xmit {

// kernel: tcp_set_skb_tso_segs(), net/ipv4/tcp_output.c
void tcp_set_skb_tso_segs(sk_buff* skb, uint32_t mss_now) {
  tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  if (skb->len <= mss_now) {
    // "Avoid the costly divide in the normal non-TSO case."
    tcb->tcp_gso_segs = 1;
    tcb->tcp_gso_size = 0;
  } else {
    tcb->tcp_gso_segs = static_cast<uint16_t>((skb->len + mss_now - 1) / mss_now);
    tcb->tcp_gso_size = static_cast<uint16_t>(mss_now);
  }
}

// kernel: tcp_init_tso_segs() — recompute when the mss changed since the last time.
static uint32_t tcp_init_tso_segs(sk_buff* skb, uint32_t mss_now) {
  const tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  if (tcb->tcp_gso_segs == 0 || (tcb->tcp_gso_segs > 1 && tcb->tcp_gso_size != mss_now))
    tcp_set_skb_tso_segs(skb, mss_now);
  return tcp_skb_pcount(skb);
}

// kernel: tcp_minshall_check(), tcp_minshall_update()
static bool tcp_minshall_check(const tcp_sock* tp) {
  return after(tp->snd_sml, tp->snd_una) && !after(tp->snd_sml, tp->snd_nxt);
}
static void tcp_minshall_update(tcp_sock* tp, uint32_t mss_now, const sk_buff* skb) {
  if (skb->len < tcp_skb_pcount(skb) * mss_now) tp->snd_sml = TCP_SKB_CB(skb)->end_seq;
}

// kernel: tcp_nagle_check(). The rules, as the kernel lists them:
// "Return false, if packet can be sent now without violation Nagle's rules:
//  1. It is full sized. (provided by caller in %partial bool)
//  2. Or it contains FIN. (already checked by caller)
//  3. Or TCP_CORK is not set, and TCP_NODELAY is set.
//  4. Or TCP_CORK is not set, and all sent packets are ACKed.
//     With Minshall's modification: all sent small packets are ACKed."
bool tcp_nagle_check(bool partial, const tcp_sock* tp, uint8_t nonagle) {
  return partial &&
         ((nonagle & TCP_NAGLE_CORK) || (nonagle == 0 && tp->packets_out != 0 && tcp_minshall_check(tp)));
}

// kernel: tcp_nagle_test()
bool tcp_nagle_test(const tcp_sock* tp, const sk_buff* skb, uint32_t cur_mss, uint8_t nonagle) {
  // "Nagle rule does not apply to frames, which sit in the middle of the write_queue (they have
  // no chances to get new data)." — the caller passes TCP_NAGLE_PUSH for those.
  if (nonagle & TCP_NAGLE_PUSH) return true;
  // "Don't use the nagle rule for urgent data (or for the final FIN)."
  if (tcp_urg_mode(tp) || (TCP_SKB_CB(skb)->tcp_flags & TCPHDR_FIN)) return true;
  return !tcp_nagle_check(skb->len < cur_mss, tp, nonagle);
}

// kernel: tcp_cwnd_test()
uint32_t tcp_cwnd_test(const tcp_sock* tp, const sk_buff* skb) {
  // "Don't be strict about the congestion window for the final FIN."
  if (tcp_skb_pcount(skb) == 1 && (TCP_SKB_CB(skb)->tcp_flags & TCPHDR_FIN)) return 1;
  uint32_t in_flight = tcp_packets_in_flight(tp);
  uint32_t cwnd = tp->snd_cwnd;
  if (in_flight >= cwnd) return 0;
  // "For better scheduling, ensure we have at least 2 GSO packets in flight."
  uint32_t halfcwnd = std::max(cwnd >> 1, 1u);
  return std::min(halfcwnd, cwnd - in_flight);
}

// kernel: tcp_snd_wnd_test()
bool tcp_snd_wnd_test(const tcp_sock* tp, const sk_buff* skb, uint32_t cur_mss) {
  uint32_t end_seq = TCP_SKB_CB(skb)->end_seq;
  if (skb->len > cur_mss) end_seq = TCP_SKB_CB(skb)->seq + cur_mss;
  return !after(end_seq, tcp_wnd_end(tp));
}

// kernel: tcp_mss_split_point() — where to cut a multi-MSS skb: at max_segs MSS, at the window,
// and for the last skb of the queue, at an MSS boundary when Nagle would hold the partial tail.
static uint32_t tcp_mss_split_point(const tcp_sock* tp, const sk_buff* skb, uint32_t mss_now,
                                    uint32_t max_segs, uint8_t nonagle) {
  uint32_t window = tcp_wnd_end(tp) - TCP_SKB_CB(skb)->seq;
  uint32_t max_len = mss_now * max_segs;
  if (max_len <= window && skb != tcp_write_queue_tail(tp)) return max_len;
  uint32_t needed = std::min(skb->len, window);
  if (max_len <= needed) return max_len;
  uint32_t partial = needed % mss_now;
  // "If last segment is not a full MSS, check if Nagle rules allow us to include this last
  // segment in this skb. Otherwise, we'll split the skb at last MSS boundary"
  if (tcp_nagle_check(partial != 0, tp, nonagle)) return needed - partial;
  return needed;
}

// kernel: tcp_tso_autosize() — the segments a TSO skb should carry: "depending on current pacing
// rate, and how close the peer is". About 1 ms of the pacing rate (sk_pacing_rate >>
// sk_pacing_shift) plus an allowance of gso_max_size halved for every 2^tcp_tso_rtt_log µs (512)
// of min RTT, at most gso_max_size, at least min_tso_segs. "For close peers, we rather send
// bigger packets to reduce cpu costs [...] For long distance/rtt flows, we would like to get ACK
// clocking with 1 ACK per ms." Before the first RTT sample the rate is ~0 (no limit) and the min
// RTT ~0 (no allowance).
static uint32_t tcp_tso_autosize(const tcp_sock* tp, uint32_t mss_now, uint32_t min_tso_segs) {
  uint64_t bytes = tp->sk_pacing_rate >> tp->sk_pacing_shift;
  // r: the min RTT >> tcp_tso_rtt_log (0 for a log of 32 or more, a shift C leaves undefined);
  // "if (r < BITS_PER_TYPE(sk->sk_gso_max_size))": a halving 32 or more times is no allowance.
  const uint32_t r = tp->sysctl_tcp_tso_rtt_log < 32 ? tcp_min_rtt(tp) >> tp->sysctl_tcp_tso_rtt_log : 0;
  if (r < 32) bytes += tp->gso_max_size >> r;
  bytes = std::min<uint64_t>(bytes, tp->gso_max_size);
  return std::max(static_cast<uint32_t>(bytes / mss_now), min_tso_segs);
}

// kernel: tcp_tso_segs() — CUBIC has no min_tso_segs() op, so net.ipv4.tcp_min_tso_segs; at most
// sk_gso_max_segs (1 without GSO, tcp_sk_setup_caps()).
uint32_t tcp_tso_segs(const tcp_sock* tp, uint32_t mss_now) {
  const uint32_t tso_segs = tcp_tso_autosize(tp, mss_now, tp->sysctl_tcp_min_tso_segs);
  return std::min<uint32_t>(tso_segs, tp->gso_max_segs);
}

// kernel: tcp_tso_should_defer() (with upstream 295ce1eb36ae, "tcp: fix tcp_tso_should_defer() vs
// large RTT", 2025). In the kernel's order: a FIN goes; in Recovery or Loss it goes; when the last
// segment went out over 1 ms ago it goes (defer only right after a write: no bursts); a send of
// max_segs full segments goes; a skb in the middle of the queue that fits goes; a limit of at
// least 1/3 of min(snd_wnd, cwnd * mss) goes (sysctl_tcp_tso_win_divisor = 3); nothing in flight
// goes; an ACK expected (oldest unacked send time + srtt) further away than min(srtt/2, 1 ms)
// goes. Otherwise defer when cwnd- or rwnd-limited below the skb's length, or when the skb may
// still grow (no FIN, no EOR). Left out: the is_cwnd_limited/is_rwnd_limited reports.
static bool tcp_tso_should_defer(const tcp_sock* tp, const sk_buff* skb, uint32_t max_segs) {
  const tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  if (tcb->tcp_flags & TCPHDR_FIN) return false;
  if (tp->icsk_ca_state >= TCP_CA_Recovery) return false;
  // "Avoid bursty behavior by allowing defer only if the last write was recent (1 ms)."
  if (static_cast<int64_t>(tp->tcp_mstamp - tp->tcp_wstamp_us - 1000) > 0) return false;
  uint32_t in_flight = tcp_packets_in_flight(tp);
  uint32_t send_win = tcp_wnd_end(tp) - tcb->seq;
  uint32_t cong_win = (tp->snd_cwnd - in_flight) * tp->mss_cache;
  uint32_t limit = std::min(send_win, cong_win);
  // "If a full-sized TSO skb can be sent, do it."
  if (limit >= max_segs * tp->mss_cache) return false;
  // "Middle in queue won't get any more data, full sendable already?"
  if (skb != tcp_write_queue_tail(tp) && limit >= skb->len) return false;
  uint32_t chunk = std::min(tp->snd_wnd, tp->snd_cwnd * tp->mss_cache) / 3;
  // "If at least some fraction of a window is available, just use it."
  if (limit >= chunk) return false;
  if (tcp_rtx_queue_empty(tp)) return false;
  uint64_t srtt = tp->srtt_us >> 3;
  uint64_t expected_ack = TCP_SKB_CB(tp->rtx_queue.head)->sent_us + srtt;
  int64_t how_far_is_the_ack = static_cast<int64_t>(expected_ack - tp->tcp_mstamp);
  // "If next ACK is likely to come too late, ie in more than min(1ms, half srtt), do not defer."
  int64_t threshold = static_cast<int64_t>(std::min<uint64_t>(srtt >> 1, 1000));
  if (how_far_is_the_ack > threshold) return false;
  // "Ok, it looks like it is advisable to defer."
  if (cong_win < send_win) {
    if (cong_win <= skb->len) return true;   // cwnd-limited
  } else if (send_win <= skb->len) {
    return true;                               // rwnd-limited
  }
  // "If this packet won't get more data, do not wait."
  if (tcb->eor) return false;
  return true;
}

// Splits a write-queue skb whose payload is all in fragments: the first `len` bytes stay, the rest
// move to a new skb queued after it, which takes the FIN/PSH flags and the EOR mark.
// 0 or -ENOBUFS. kernel: tso_fragment(), net/ipv4/tcp_output.c
static int tso_fragment(tcp_sock* tp, sk_buff* skb, uint32_t len, uint32_t mss_now, SkbQueue* q) {
  if (skb_headlen(skb) != 0) return -EINVAL;  // the copy path never puts payload in the head
  sk_buff* buff = tp->skb_pool->alloc_skb();
  if (buff == nullptr) return -ENOBUFS;
  skb_reserve(buff, kTcpHeadroom);
  skb_zerocopy_clone(buff, skb);  // kernel: skb_split() — both parts hold the MSG_ZEROCOPY send
  skb_shared_info* sh = skb_shinfo(skb);
  uint32_t pos = 0;
  int keep = 0;
  for (int i = 0; i < sh->nr_frags; ++i) {
    skb_frag* f = &sh->frags[i];
    uint32_t size = skb_frag_size(f);
    if (pos + size <= len) {
      keep = i + 1;
    } else if (pos < len) {  // straddles the cut: both skbs hold a reference on its memory
      uint32_t head_part = len - pos;
      skb_frag tail = *f;
      skb_frag_off_add(&tail, head_part);
      skb_frag_size_sub(&tail, head_part);
      skb_frag_ref_core(&tail);
      skb_append_frag(buff, tail);
      skb_frag_size_set(f, head_part);
      keep = i + 1;
    } else {  // moves whole, with its reference
      skb_append_frag(buff, *f);
    }
    pos += size;
  }
  sh->nr_frags = static_cast<uint8_t>(keep);
  skb->data_len -= buff->len;
  skb->len -= buff->len;
  // "buff->truesize += nlen; skb->truesize -= nlen;" on tcp_stream_alloc_skb()'s (tcp_tsq.h)
  buff->truesize = kTcpSkbHeadTruesize + buff->len;
  skb->truesize -= std::min(skb->truesize, buff->len);

  tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  tcp_skb_cb* ncb = TCP_SKB_CB(buff);
  *ncb = *tcb;
  ncb->seq = tcb->seq + len;
  tcb->end_seq = ncb->seq;
  // "PSH and FIN should only be set in the second packet."
  tcb->tcp_flags = static_cast<uint8_t>(tcb->tcp_flags & ~(TCPHDR_FIN | TCPHDR_PSH));
  tcb->eor = false;  // kernel: tcp_skb_fragment_eor()
  tcp_set_skb_tso_segs(skb, mss_now);
  tcp_set_skb_tso_segs(buff, mss_now);
  skb_queue_after(q, skb, buff);
  return 0;
}

// kernel: tcp_fragment(TCP_FRAG_IN_RTX_QUEUE) with tcp_adjust_pcount()
int tcp_fragment_rtx(tcp_sock* tp, sk_buff* skb, uint32_t len, uint32_t mss_now) {
  const uint32_t old_factor = tcp_skb_pcount(skb);
  int err = tso_fragment(tp, skb, len, mss_now, &tp->rtx_queue);
  if (err != 0) return err;
  // "If this packet has been sent out already, we must adjust the various packet counters."
  sk_buff* buff = skb->next;
  int diff = static_cast<int>(old_factor) - static_cast<int>(tcp_skb_pcount(skb)) - static_cast<int>(tcp_skb_pcount(buff));
  const uint8_t sacked = TCP_SKB_CB(skb)->sacked;
  tp->packets_out -= diff;  // diff is negative when a segment was added
  if (sacked & TCPCB_SACKED_ACKED) tp->sacked_out -= diff;
  if (sacked & TCPCB_SACKED_RETRANS) tp->retrans_out -= diff;
  if (sacked & TCPCB_LOST) tp->lost_out -= diff;
  return 0;
}

// kernel: __tcp_transmit_skb(), then tcp_v4_send_check()
int tcp_transmit_skb_core(tcp_sock* tp, sk_buff* skb, bool clone_it, TcpXmitFn xmit) {
  // kernel: "tp->tcp_wstamp_ns = max(tp->tcp_wstamp_ns, tp->tcp_clock_cache)" (no pacing: no EDT
  // time in the future), skb->skb_mstamp_ns = tp->tcp_wstamp_ns
  tp->tcp_wstamp_us = std::max(tp->tcp_wstamp_us, tp->tcp_mstamp);
  TCP_SKB_CB(skb)->sent_us = tp->tcp_mstamp;
  TCP_SKB_CB(skb)->tx_delivered = tp->delivered;  // kernel: tcp_rate_skb_sent()
  // clone_it: a private head (our write-queue skbs have an empty one) sharing the payload
  // fragments: the header can be written without touching the queued original (see sk_buff.h on
  // clones).
  sk_buff* copy = skb;
  if (clone_it) {
    copy = pskb_copy(skb);
    if (copy == nullptr) return -ENOBUFS;
  }
  const tcp_skb_cb* tcb = TCP_SKB_CB(copy);

  TCP_SKB_CB(copy)->saddr = tp->saddr;  // for an owner whose xmit serves many sockets
  TCP_SKB_CB(copy)->daddr = tp->daddr;
  tcp_out_options opts;
  // "if (unlikely(tcb->tcp_flags & TCPHDR_SYN)) tcp_syn_options() else tcp_established_options()"
  uint32_t tcp_header_size =
      ((tcb->tcp_flags & TCPHDR_SYN) ? tcp_syn_options(tp, copy, &opts) : tcp_established_options(tp, copy, &opts)) + 20;
  // "Force a PSH flag on all (GSO) packets to expedite GRO flush at receiver" — on the copy being
  // sent (the kernel's clone), so the last segment of every GSO skb carries PSH; "we do not force
  // the PSH flag for non GSO packets".
  if (!(tcb->tcp_flags & TCPHDR_SYN) && tcp_skb_pcount(copy) > 1) TCP_SKB_CB(copy)->tcp_flags |= TCPHDR_PSH;
  uint8_t* p = skb_push(copy, tcp_header_size);
  if (p == nullptr) {
    kfree_skb(copy);
    return -ENOBUFS;
  }
  skb_reset_transport_header(copy);
  TcpHdr th = *TcpHdr::at(absl::MakeSpan(p, tcp_header_size));
  th.set_source(tp->sport);
  th.set_dest(tp->dport);
  th.set_seq(tcb->seq);
  th.set_ack_seq(tp->rcv_nxt);
  th.set_doff(static_cast<uint8_t>(tcp_header_size >> 2));
  th.set_flags(tcb->tcp_flags);
  th.set_check(0);
  th.set_urg_ptr(0);
  // The urgent pointer while the segment starts before it: the offset of the byte after the urgent
  // data, or 0xFFFF ("urgent data follows") when it lies beyond what 16 bits reach.
  if (tcp_urg_mode(tp) && before(tcb->seq, tp->snd_up)) {
    if (before(tp->snd_up, tcb->seq + 0x10000)) {
      th.set_urg_ptr(static_cast<uint16_t>(tp->snd_up - tcb->seq));
      th.set_flags(tcb->tcp_flags | TCPHDR_URG);
    } else if (after(tcb->seq + 0xFFFF, tp->snd_nxt)) {
      th.set_urg_ptr(0xFFFF);
      th.set_flags(tcb->tcp_flags | TCPHDR_URG);
    }
  }
  if (!(tcb->tcp_flags & TCPHDR_SYN)) {
    th.set_window(tcp_select_window(tp));
  } else {
    // "RFC1323: The window in SYN & SYN/ACK segments is never scaled."
    th.set_window(static_cast<uint16_t>(std::min(tp->rcv_wnd, 65535u)));
  }
  tcp_options_write(p + 20, opts);
  if (opts.num_sack_blocks != 0) tp->dsack = false;  // kernel: in tcp_options_write()

  if (tcb->tcp_flags & TCPHDR_ACK) tcp_event_ack_sent(tp);
  const uint32_t pcount = std::max<uint32_t>(1, tcb->tcp_gso_segs);  // tcp_skb_pcount(): 1 for a bare segment
  if (copy->len != tcp_header_size) {
    tcp_event_data_sent(tp);
    tp->data_segs_out += pcount;
    tp->bytes_sent += copy->len - tcp_header_size;
  }
  tp->segs_out += pcount;
  // "skb_orphan(skb); skb->sk = sk; skb->destructor = skb_is_tcp_pure_ack(skb) ? __sock_wfree :
  // tcp_wfree; refcount_add(skb->truesize, &sk->sk_wmem_alloc);" — until the device completes it.
  tcp_skb_set_owner_w(tp, copy, skb_is_tcp_pure_ack(copy));
  skb_shinfo(copy)->gso_segs = tcb->tcp_gso_segs;
  skb_shinfo(copy)->gso_size = tcb->tcp_gso_size;
  if (tp->hw_csum || skb_is_gso(copy)) {
    // kernel: __tcp_v4_send_check() — the device (or software GSO) finishes it from the
    // pseudo-header sum.
    copy->ip_summed = CHECKSUM_PARTIAL;
    copy->csum_start = static_cast<uint16_t>(copy->transport_header);
    copy->csum_offset = 16;
    th.set_check(static_cast<sum16>(~csum_tcpudp_magic(tp->saddr, tp->daddr, copy->len, IPPROTO_TCP, 0)));
  } else {
    // What skb_checksum_help() would do later for a device without NETIF_F_HW_CSUM.
    copy->ip_summed = CHECKSUM_NONE;
    wsum sum = skb_checksum(copy, 0, copy->len, 0);
    th.set_check(csum_tcpudp_magic(tp->saddr, tp->daddr, copy->len, IPPROTO_TCP, sum));
  }
  return xmit(copy);
}

int tcp_transmit_skb(tcp_sock* tp, sk_buff* skb, TcpXmitFn xmit) {
  return tcp_transmit_skb_core(tp, skb, /*clone_it=*/true, xmit);
}

// kernel: tcp_event_new_data_sent() — the skb leaves the write queue for the retransmit queue.
static void tcp_event_new_data_sent(tcp_sock* tp, sk_buff* skb) {
  uint32_t prior_packets = tp->packets_out;
  skb_dequeue(&tp->write_queue);  // skb is send_head, the head of the queue
  skb_queue_tail(&tp->rtx_queue, skb);
  tp->snd_nxt = TCP_SKB_CB(skb)->end_seq;
  tp->packets_out += tcp_skb_pcount(skb);
  if (prior_packets == 0) tcp_rearm_rto(tp);
}

// kernel: tcp_write_xmit()
bool tcp_write_xmit(tcp_sock* tp, uint32_t mss_now, uint8_t nonagle, bool push_one, TcpXmitFn xmit) {
  const uint32_t max_segs = tcp_tso_segs(tp, mss_now);
  bool is_cwnd_limited = false, is_rwnd_limited = false;
  uint32_t sent_pkts = 0;
  while (sk_buff* skb = tcp_send_head(tp)) {
    uint32_t tso_segs = tcp_init_tso_segs(skb, mss_now);
    uint32_t cwnd_quota = tcp_cwnd_test(tp, skb);
    if (cwnd_quota == 0) {
      is_cwnd_limited = true;
      break;
    }
    if (!tcp_snd_wnd_test(tp, skb, mss_now)) {
      is_rwnd_limited = true;
      break;
    }
    if (tso_segs == 1) {
      if (!tcp_nagle_test(tp, skb, mss_now, skb == tcp_write_queue_tail(tp) ? nonagle : TCP_NAGLE_PUSH))
        break;
    } else if (!push_one && tcp_tso_should_defer(tp, skb, max_segs)) {
      break;
    }
    uint32_t limit = mss_now;
    if (tso_segs > 1) limit = tcp_mss_split_point(tp, skb, mss_now, std::min(cwnd_quota, max_segs), nonagle);
    if (skb->len > limit && tso_fragment(tp, skb, limit, mss_now, &tp->write_queue) != 0) break;
    if (tcp_small_queue_check(tp, skb, 0)) break;
    // "Argh, we hit an empty skb(), presumably a thread is sleeping in sendmsg()"
    if (TCP_SKB_CB(skb)->end_seq == TCP_SKB_CB(skb)->seq) break;
    if (tcp_transmit_skb(tp, skb, xmit) != 0) break;
    tcp_event_new_data_sent(tp, skb);
    tcp_minshall_update(tp, mss_now, skb);
    sent_pkts += tcp_skb_pcount(skb);
    if (push_one) break;
  }
  if (is_rwnd_limited) {
    tcp_chrono_start(tp, TCP_CHRONO_RWND_LIMITED);
  } else {
    tcp_chrono_stop(tp, TCP_CHRONO_RWND_LIMITED);
  }
  is_cwnd_limited |= tcp_packets_in_flight(tp) >= tp->snd_cwnd;
  if (sent_pkts != 0 || is_cwnd_limited) tcp_cwnd_validate(tp, is_cwnd_limited);
  if (sent_pkts != 0 && tcp_in_cwnd_reduction(tp)) tp->prr_out += sent_pkts;
  return tp->packets_out == 0 && !tcp_write_queue_empty(tp);
}

// kernel: __tcp_push_pending_frames() with tcp_check_probe_timer()
bool tcp_push_pending_frames(tcp_sock* tp, uint32_t cur_mss, uint8_t nonagle, TcpXmitFn xmit) {
  if (!tcp_write_xmit(tp, cur_mss, nonagle, false, xmit)) return false;
  // kernel: tcp_check_probe_timer() — data waits on a closed window with nothing in flight.
  if (tp->packets_out == 0 && tp->icsk_pending == 0) {
    tp->icsk_pending = ICSK_TIME_PROBE0;
    uint64_t base = tp->icsk_rto > TCP_RTO_MIN_US ? tp->icsk_rto : TCP_RTO_MIN_US;  // tcp_probe0_base()
    sk_reset_timer(&tp->icsk_retransmit_timer, tp->tcp_mstamp + base);
  }
  return true;
}

// kernel: tcp_push_one()
void tcp_push_one(tcp_sock* tp, uint32_t mss_now, TcpXmitFn xmit) {
  tcp_write_xmit(tp, mss_now, TCP_NAGLE_PUSH, true, xmit);
}

}  // namespace xmit
