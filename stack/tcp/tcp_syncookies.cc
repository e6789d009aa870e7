// stack/tcp/tcp_syncookies.cc — see tcp_syncookies.h (kernel: net/ipv4/syncookies.c).
#include "stack/tcp/tcp_syncookies.h"

#include <iterator>

#include "stack/base/byteorder.h"
#include "stack/tcp/tcp_conn_int.h"
#include "stack/tcp/tcp_input_parse.h"
#include "stack/tcp/tcp_output_ack.h"
#include "stack/wire/tcp.h"

namespace xmit {

namespace {

const tcp_syncookie_secret kZeroSecret{};

// kernel: cookie_hash() — siphash_4u32(saddr, daddr, sport << 16 | dport, count) under key c; the
// addresses and ports as the kernel's __be32/__be16 values.
uint32_t cookie_hash(const tcp_syncookie_secret* s, be32 saddr, be32 daddr, uint16_t sport, uint16_t dport,
                     uint32_t count, int c) {
  if (s == nullptr) s = &kZeroSecret;
  const uint32_t ports = uint32_t{cpu_to_be16(sport)} << 16 | cpu_to_be16(dport);
  return static_cast<uint32_t>(siphash_4u32(saddr, daddr, ports, count, &s->key[c]));
}

// kernel: secure_tcp_syn_cookie()
uint32_t secure_tcp_syn_cookie(const tcp_syncookie_secret* s, be32 saddr, be32 daddr, uint16_t sport,
                               uint16_t dport, uint32_t sseq, uint32_t data, uint64_t now_us) {
  const uint32_t count = tcp_cookie_time(now_us);
  return cookie_hash(s, saddr, daddr, sport, dport, 0, 0) + sseq + (count << COOKIEBITS) +
         ((cookie_hash(s, saddr, daddr, sport, dport, count, 1) + data) & COOKIEMASK);
}

// kernel: check_tcp_syn_cookie() — the "data" (the MSS index), or an out-of-range value for a bad
// or stale cookie.
uint32_t check_tcp_syn_cookie(const tcp_syncookie_secret* s, uint32_t cookie, be32 saddr, be32 daddr,
                              uint16_t sport, uint16_t dport, uint32_t sseq, uint64_t now_us) {
  const uint32_t count = tcp_cookie_time(now_us);
  // "Strip away the layers from the cookie"
  cookie -= cookie_hash(s, saddr, daddr, sport, dport, 0, 0) + sseq;
  // "Cookie is now reduced to (count * 2^24) ^ (hash % 2^24)"
  const uint32_t diff = (count - (cookie >> COOKIEBITS)) & (UINT32_MAX >> COOKIEBITS);
  if (diff >= MAX_SYNCOOKIE_AGE) return UINT32_MAX;
  return (cookie - cookie_hash(s, saddr, daddr, sport, dport, count - diff, 1)) & COOKIEMASK;
}

// kernel: time_between32()
bool time_between32(uint32_t t, uint32_t l, uint32_t h) { return h - l >= t - l; }

}  // namespace

uint32_t cookie_v4_init_sequence_core(const tcp_syncookie_secret* secret, be32 saddr, be32 daddr, uint16_t sport,
                                      uint16_t dport, uint32_t seq, uint16_t* mssp, uint64_t now_us) {
  const uint16_t mss = *mssp;
  uint32_t mssind = std::size(msstab) - 1;
  for (; mssind != 0; --mssind)
    if (mss >= msstab[mssind]) break;
  *mssp = msstab[mssind];
  return secure_tcp_syn_cookie(secret, saddr, daddr, sport, dport, seq, mssind, now_us);
}

int cookie_v4_check_core(const tcp_syncookie_secret* secret, be32 saddr, be32 daddr, uint16_t sport, uint16_t dport,
                         uint32_t seq, uint32_t cookie, uint64_t now_us) {
  const uint32_t mssind = check_tcp_syn_cookie(secret, cookie, saddr, daddr, sport, dport, seq - 1, now_us);
  return mssind < std::size(msstab) ? msstab[mssind] : 0;
}

uint32_t cookie_init_timestamp(const tcp_request_sock& req, uint64_t now_us) {
  const uint64_t ts_now = now_us / 1000;
  uint32_t options = req.wscale_ok ? req.snd_wscale : TS_OPT_WSCALE_MASK;
  if (req.sack_ok) options |= TS_OPT_SACK;
  uint64_t ts = (ts_now >> TSBITS) << TSBITS;
  ts |= options;
  if (ts > ts_now) ts -= uint64_t{1} << TSBITS;
  return static_cast<uint32_t>(ts);
}

bool cookie_timestamp_decode(tcp_options_received* opt) {
  const uint32_t options = opt->rcv_tsecr;  // "echoed timestamp, lowest bits contain options"
  if (!opt->saw_tstamp) {
    opt->tstamp_ok = opt->sack_ok = opt->wscale_ok = false;  // tcp_clear_options()
    opt->snd_wscale = 0;
    return true;
  }
  // net.ipv4.tcp_timestamps, tcp_sack and tcp_window_scaling are 1 here: no option is refused.
  opt->sack_ok = (options & TS_OPT_SACK) != 0;
  if ((options & TS_OPT_WSCALE_MASK) == TS_OPT_WSCALE_MASK) return true;  // "no window scaling"
  opt->wscale_ok = true;
  opt->snd_wscale = static_cast<uint8_t>(options & TS_OPT_WSCALE_MASK);
  return true;
}

void tcp_synq_overflow(tcp_sock* listener) {
  const uint32_t now = tcp_jiffies32(listener);
  const uint32_t last_overflow = listener->synq_overflow_ts;
  if (!listener->synq_overflowed || !time_between32(now, last_overflow, last_overflow + 1000)) {
    listener->synq_overflow_ts = now;
    listener->synq_overflowed = true;
  }
}

bool tcp_synq_no_recent_overflow(const tcp_sock* listener) {
  if (!listener->synq_overflowed) return true;
  const uint32_t now = tcp_jiffies32(listener);
  const uint32_t last_overflow = listener->synq_overflow_ts;
  // "we have to use 'last_overflow - HZ' as lower bound"
  return !time_between32(now, last_overflow - 1000, last_overflow + TCP_SYNCOOKIE_VALID_MS);
}

tcp_sock* cookie_v4_check(tcp_sock* listener, sk_buff* skb, uint32_t dst_mtu, TcpOps* ops) {
  const tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  const uint32_t cookie = tcb->ack_seq - 1;
  LinuxMib* mib = listener->net_mib;
  if (listener->sysctl_tcp_syncookies == 0 || !(tcb->tcp_flags & TCPHDR_ACK) || (tcb->tcp_flags & TCPHDR_RST))
    return listener;
  if (tcp_synq_no_recent_overflow(listener)) return listener;
  const uint16_t sport = load_be16(skb->data), dport = load_be16(skb->data + 2);
  const int mss = cookie_v4_check_core(listener->syncookie_secret, tcb->saddr, tcb->daddr, sport, dport, tcb->seq,
                                       cookie, listener->tcp_mstamp);
  if (mss == 0) {
    if (mib != nullptr) ++mib->SyncookiesFailed;  // LINUX_MIB_SYNCOOKIESFAILED
    return listener;
  }
  if (mib != nullptr) ++mib->SyncookiesRecv;  // LINUX_MIB_SYNCOOKIESRECV
  // "check for timestamp cookie support"
  tcp_options_received tcp_opt;
  const uint32_t hdr_len = (skb->data[12] >> 4) * 4u;
  uint8_t sack_off = 0;
  tcp_parse_options(absl::MakeConstSpan(skb->data, hdr_len), false, &tcp_opt, &sack_off);
  uint32_t tsoff = 0;
  if (tcp_opt.saw_tstamp && tcp_opt.rcv_tsecr != 0) {
    tsoff = ops->secure_ts_off(tcb->daddr, tcb->saddr, dport, sport);
    tcp_opt.rcv_tsecr -= tsoff;
  }
  if (!cookie_timestamp_decode(&tcp_opt)) return listener;
  tcp_request_sock req;
  req.syncookie = true;
  req.rcv_isn = tcb->seq - 1;
  req.snt_isn = cookie;
  req.ts_off = 0;
  req.mss = static_cast<uint16_t>(mss);
  req.rmt_port = sport;
  req.loc_port = dport;
  req.loc_addr = tcb->daddr;
  req.rmt_addr = tcb->saddr;
  req.snd_wscale = tcp_opt.snd_wscale;
  req.sack_ok = tcp_opt.sack_ok;
  req.wscale_ok = tcp_opt.wscale_ok;
  req.tstamp_ok = tcp_opt.saw_tstamp;
  req.ts_recent = tcp_opt.saw_tstamp ? tcp_opt.rcv_tsval : 0;
  req.snd_wnd = load_be16(skb->data + 14);
  req.snt_synack = 0;
  req.num_retrans = 0;
  req.dst_mtu = dst_mtu;
  // "Try to redo what tcp_v4_send_synack did." — with req->mss, the peer's MSS the cookie kept
  // (the SYN-ACK's window was rounded to our advertised MSS).
  req.rsk_window_clamp = listener->window_clamp;
  uint8_t rcv_wscale = 0;
  tcp_select_initial_window(listener->rcvbuf, req.mss, &req.rsk_rcv_wnd, &req.rsk_window_clamp, req.wscale_ok,
                            &rcv_wscale, 0, listener->sysctl_rmem_max);
  req.rcv_wscale = rcv_wscale;
  // tcp_get_cookie_sock(): syn_recv_sock(), then "tcp_sk(child)->tsoffset = tsoff", then
  // inet_csk_reqsk_queue_add().
  tcp_sock* child = tcp_create_openreq_child(listener, req, skb, dst_mtu, ops);
  if (child == nullptr) return nullptr;
  child->tsoffset = tsoff;
  inet_csk_reqsk_queue_add(listener, child, ops);
  return child;
}

}  // namespace xmit
