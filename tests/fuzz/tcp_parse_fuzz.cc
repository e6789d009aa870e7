// tests/fuzz/tcp_parse_fuzz.cc — libFuzzer target for the TCP input parser: tcp_v4_check_segment()
// (without the checksum, so the fuzzer reaches the options) and tcp_parse_options() in both the
// SYN and established modes, with the negotiated bits taken from the first input byte. Checks
// what the parser promises: only accepted headers are parsed, the window scale is at most 14, a
// recorded SACK option lies inside the header with a whole number of blocks.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "stack/tcp/tcp_input_parse.h"
#include "stack/wire/tcp.h"

using namespace xmit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  absl::Span<const uint8_t> seg(data + 1, size - 1);
  tcp_skb_cb tcb;
  if (tcp_v4_check_segment(seg, 0x010012c6, 0x020012c6, false, &tcb) != 0) return 0;
  auto th = TcpHdrView::parse(seg);
  if (!th) abort();  // accepted by the check but not by the view
  absl::Span<const uint8_t> hdr(seg.data(), th->doff() * 4u);  // (subspan() would pull in abseil's throw helper)
  if (tcb.end_seq - tcb.seq > seg.size() - hdr.size() + 2) abort();
  tcp_options_received rx;
  rx.tstamp_ok = mode & 1;
  rx.sack_ok = mode & 2;
  rx.user_mss = (mode & 4) ? 536 : 0;
  uint8_t sack_off = 0;
  tcp_parse_options(hdr, (mode & 8) != 0, &rx, &sack_off);
  if (rx.snd_wscale > TCP_MAX_WSCALE) abort();
  if (rx.user_mss != 0 && rx.mss_clamp > rx.user_mss && rx.mss_clamp != 0xffff) abort();
  if (sack_off != 0) {
    if (sack_off < 20 || sack_off + 2u > hdr.size()) abort();
    uint8_t len = hdr[sack_off + 1];
    if (sack_off + len > hdr.size() || (len - 2) % 8 != 0 || len < 10) abort();
    tcp_sack_block blocks[4];
    int n = tcp_sack_blocks(hdr, sack_off, blocks);
    if (n < 1 || n > 4) abort();
  }
  return 0;
}
