// stack/tcp/tcp_input_parse.h — what tcp_v4_rcv() checks of a segment before any socket sees it
// (length, data offset, checksum) and the option parser. Kernel counterparts: tcp_v4_rcv() and
// tcp_v4_fill_cb() (net/ipv4/tcp_ipv4.c), tcp_parse_options() (net/ipv4/tcp_input.c).
// Simplified: MD5, AO, Fast Open, MPTCP and AccECN options are "unknown" here (saw_unknown); the
// SYN-only options (MSS, WS, SACK_PERM) are parsed as the kernel parses them, for the handshake
// slice to use.
#pragma once

#include <cstdint>

#include "absl/types/span.h"
#include "stack/base/checksum.h"
#include "stack/tcp/tcp_sock.h"

namespace xmit {

inline constexpr uint8_t TCPOLEN_MSS = 4;        // kernel: include/net/tcp.h
inline constexpr uint8_t TCPOLEN_WINDOW = 3;
inline constexpr uint8_t TCPOLEN_SACK_PERM = 2;
inline constexpr uint8_t TCP_MAX_WSCALE = 14;     // RFC 7323 §2.3

// Checks `seg` (TCP header + payload, as IP delivered it) as tcp_v4_rcv() does before the socket
// lookup: at least a 20-byte header ("pskb_may_pull(skb, sizeof(struct tcphdr))"), doff >= 5 and
// within the segment, and — unless `verify_csum` is false (fuzzing, or a device that checked it:
// CHECKSUM_UNNECESSARY) — the checksum over the pseudo-header (skb_checksum_init(), then
// __skb_checksum_complete()). On success fills `tcb` as tcp_v4_fill_cb(): seq, end_seq = seq +
// SYN + FIN + payload length, ack_seq, flags, and the addresses (saddr = the sender). Returns 0
// or -EINVAL (the kernel's bad_packet / csum_error: the segment is dropped and counted, never
// answered).
int tcp_v4_check_segment(absl::Span<const uint8_t> seg, be32 saddr, be32 daddr, bool verify_csum,
                         tcp_skb_cb* tcb);

// The options of header `th` (a whole header, doff * 4 bytes, as TcpHdrView::parse() accepted it)
// into `opt_rx`, exactly as tcp_parse_options(): EOL ends; NOP is one byte; a kind with no room
// for its length byte, a length < 2 ("silly options") or a length past the end stops the parse
// (options before it stay); a known kind with a wrong length is skipped. MSS, WS and SACK_PERM
// count only on a SYN and when !estab; WS above 14 is taken as 14; TS needs length 10 and, when
// estab, tstamp_ok; SACK needs length 2 + 8n (n >= 1) and sack_ok, and then only its offset from
// the header start is recorded in `*sack_off` (the kernel's TCP_SKB_CB(skb)->sacked).
// saw_tstamp and saw_unknown are reset first.
void tcp_parse_options(absl::Span<const uint8_t> th, bool estab, tcp_options_received* opt_rx,
                       uint8_t* sack_off);

// Reads the SACK blocks of the option at `sack_off` in `th` (as tcp_parse_options() found it) into
// `blocks`; returns how many (0 when sack_off is 0). kernel: the start of tcp_sacktag_write_queue()
int tcp_sack_blocks(absl::Span<const uint8_t> th, uint8_t sack_off, tcp_sack_block blocks[4]);

}  // namespace xmit
