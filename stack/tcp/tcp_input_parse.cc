// stack/tcp/tcp_input_parse.cc — segment validation and option parsing. Kernel counterparts in
// tcp_input_parse.h.
#include "stack/tcp/tcp_input_parse.h"

#include <netinet/in.h>  // IPPROTO_TCP

#include <cerrno>

#include "stack/base/byteorder.h"
#include "stack/wire/tcp.h"

namespace xmit {

// kernel: tcp_v4_rcv() up to the socket lookup, and tcp_v4_fill_cb(), net/ipv4/tcp_ipv4.c
int tcp_v4_check_segment(absl::Span<const uint8_t> seg, be32 saddr, be32 daddr, bool verify_csum,
                         tcp_skb_cb* tcb) {
  // "pskb_may_pull(skb, sizeof(struct tcphdr))", "th->doff < sizeof(struct tcphdr) / 4",
  // "pskb_may_pull(skb, th->doff * 4)" — all in TcpHdrView::parse().
  auto th = TcpHdrView::parse(seg);
  if (!th) return -EINVAL;
  if (verify_csum) {
    // The pseudo-header sum plus the segment's sum folds to 0 for a correct checksum.
    wsum sum = csum_partial(seg.data(), seg.size(), 0);
    if (csum_tcpudp_magic(saddr, daddr, static_cast<uint32_t>(seg.size()), IPPROTO_TCP, sum) != 0) return -EINVAL;
  }
  uint32_t hdr = th->doff() * 4u;
  uint8_t flags = th->flags();
  *tcb = tcp_skb_cb{};
  tcb->seq = th->seq();
  tcb->end_seq = tcb->seq + ((flags & TCPHDR_SYN) ? 1 : 0) + ((flags & TCPHDR_FIN) ? 1 : 0) +
                 static_cast<uint32_t>(seg.size() - hdr);
  tcb->ack_seq = th->ack_seq();
  tcb->tcp_flags = flags;
  tcb->saddr = saddr;
  tcb->daddr = daddr;
  return 0;
}

// kernel: tcp_parse_options(), net/ipv4/tcp_input.c
void tcp_parse_options(absl::Span<const uint8_t> th, bool estab, tcp_options_received* opt_rx,
                       uint8_t* sack_off) {
  const bool syn = th.size() > 13 && (th[13] & TCPHDR_SYN);
  size_t pos = 20;
  int length = static_cast<int>(th.size()) - 20;
  opt_rx->saw_tstamp = false;
  opt_rx->saw_unknown = false;
  while (length > 0) {
    uint8_t opcode = th[pos++];
    if (opcode == TCPOPT_EOL) return;
    if (opcode == TCPOPT_NOP) {  // "Ref: RFC 793 section 3.1"
      --length;
      continue;
    }
    if (length < 2) return;
    int opsize = th[pos++];
    if (opsize < 2) return;       // "silly options"
    if (opsize > length) return;  // "don't parse partial options"
    const uint8_t* ptr = th.data() + pos;  // may be the end, for a 2-byte option that ends the header
    switch (opcode) {
      case TCPOPT_MSS:
        if (opsize == TCPOLEN_MSS && syn && !estab) {
          uint16_t in_mss = load_be16(ptr);
          if (in_mss != 0) {
            if (opt_rx->user_mss != 0 && opt_rx->user_mss < in_mss) in_mss = opt_rx->user_mss;
            opt_rx->mss_clamp = in_mss;
          }
        }
        break;
      case TCPOPT_WINDOW:
        if (opsize == TCPOLEN_WINDOW && syn && !estab) {  // sysctl_tcp_window_scaling = 1
          opt_rx->wscale_ok = true;
          // "Illegal window scaling value %d > %u received" (RFC 7323 §2.3)
          opt_rx->snd_wscale = ptr[0] > TCP_MAX_WSCALE ? TCP_MAX_WSCALE : ptr[0];
        }
        break;
      case TCPOPT_TIMESTAMP:
        if (opsize == TCPOLEN_TIMESTAMP && ((estab && opt_rx->tstamp_ok) || !estab)) {
          opt_rx->saw_tstamp = true;
          opt_rx->rcv_tsval = load_be32(ptr);
          opt_rx->rcv_tsecr = load_be32(ptr + 4);
        }
        break;
      case TCPOPT_SACK_PERM:
        if (opsize == TCPOLEN_SACK_PERM && syn && !estab) opt_rx->sack_ok = true;  // + tcp_sack_reset()
        break;
      case TCPOPT_SACK:
        if (opsize >= TCPOLEN_SACK_BASE + TCPOLEN_SACK_PERBLOCK &&
            (opsize - TCPOLEN_SACK_BASE) % TCPOLEN_SACK_PERBLOCK == 0 && opt_rx->sack_ok) {
          *sack_off = static_cast<uint8_t>(pos - 2);
        }
        break;
      default:
        opt_rx->saw_unknown = true;
        break;
    }
    pos += static_cast<size_t>(opsize - 2);
    length -= opsize;
  }
}

// kernel: tcp_sacktag_write_queue() — "num_sacks = min(TCP_NUM_SACKS, (ptr[1] - TCPOLEN_SACK_BASE) >> 3)"
int tcp_sack_blocks(absl::Span<const uint8_t> th, uint8_t sack_off, tcp_sack_block blocks[4]) {
  if (sack_off == 0 || sack_off + 2u > th.size()) return 0;
  int n = (th[sack_off + 1] - TCPOLEN_SACK_BASE) >> 3;
  if (n > 4) n = 4;
  const uint8_t* p = &th[sack_off + 2];
  for (int i = 0; i < n; ++i) {
    blocks[i].start_seq = load_be32(p + 8 * i);
    blocks[i].end_seq = load_be32(p + 8 * i + 4);
  }
  return n;
}

}  // namespace xmit
