// tests/tcp/tcp_bed.h — pools, a tcp_sock in ESTABLISHED-like state, and a transmit function that
// records each segment's header fields (and frees the skb).
#pragma once

#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "stack/skb/pool.h"
#include "stack/tcp/tcp_ack.h"
#include "stack/tcp/tcp_input.h"
#include "stack/tcp/tcp_input_parse.h"
#include "stack/tcp/tcp_output_ack.h"
#include "stack/tcp/tcp_recvmsg.h"
#include "stack/tcp/tcp_mss.h"
#include "stack/tcp/tcp_sendmsg.h"
#include "stack/tcp/tcp_tsq.h"
#include "stack/wire/tcp.h"

namespace xmit::testing_tcp {

// One segment as tcp_write_xmit() handed it over. `seq` is relative to the ISN.
struct Seg {
  uint32_t seq = 0;
  uint32_t len = 0;  // payload bytes
  uint8_t flags = 0;
  uint16_t gso_segs = 0;
  uint16_t gso_size = 0;
  bool operator==(const Seg&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const Seg& s) {
  return os << "{seq " << s.seq << " len " << s.len << " flags 0x" << std::hex << int(s.flags) << std::dec
            << " gso " << s.gso_segs << "x" << s.gso_size << "}";
}

inline constexpr uint32_t kIsn = 1000;
inline constexpr uint32_t kPeerIsn = 5000;  // the peer's sequence space starts here (tp.rcv_nxt)
inline constexpr uint8_t kAck = TCPHDR_ACK;
inline constexpr uint8_t kAckPsh = TCPHDR_ACK | TCPHDR_PSH;

struct TcpBed {
  std::unique_ptr<BufPool> heads;
  std::unique_ptr<BufPool> pages;
  std::unique_ptr<SkbPool> skbs;
  tcp_sock tp;
  std::vector<Seg> segs;
  struct AckField {  // the receive side of each segment sent: ACK field (relative to kPeerIsn), window
    uint32_t ack = 0;
    uint16_t window = 0;
    bool operator==(const AckField&) const = default;
  };
  std::vector<AckField> acks;
  std::vector<uint16_t> urg_ptrs;  // each segment's urgent pointer field
  uint32_t mtu = 1500;
  // hold: the device keeps each segment until complete() (its TX completion); otherwise it is freed
  // (completed) as it is sent. tsq: the TSQ list, once attach_tsq() made this bed its owner.
  bool hold = false;
  std::vector<sk_buff*> held;
  tsq_tasklet tsq;

  // 1448-byte MSS (timestamps), TSO device, a 1 MiB peer window, cwnd 10.
  explicit TcpBed(uint32_t nr_pages = 16) {
    EXPECT_EQ(BufPool::create(512, 2048, &heads), 0);
    EXPECT_EQ(BufPool::create(nr_pages, 32768, &pages), 0);  // kernel: 32 KiB sk_page_frag pages
    EXPECT_EQ(SkbPool::create(512, heads.get(), &skbs), 0);
    tp.skb_pool = skbs.get();
    tp.page_pool = pages.get();
    tp.saddr = htonl(0xc6120001);
    tp.daddr = htonl(0xc6120002);
    tp.sport = 40000;
    tp.dport = 5001;
    tp.snd_una = tp.snd_nxt = tp.write_seq = tp.pushed_seq = tp.snd_up = kIsn;
    tp.snd_wnd = tp.max_window = 1u << 20;
    tp.rcv_nxt = 5000;
    tp.rcv_wnd = 64240;
    tp.rx_opt.tstamp_ok = true;
    tp.sk_state = TCP_ESTABLISHED;
    tp.tcp_header_len = 32;
    tcp_sync_mss(&tp, mtu);
    tcp_sk_setup_caps(&tp, NetdevFeatures{.ip_csum = true, .l4_csum = true, .tso = true});
  }
  ~TcpBed() {
    hold = false;
    complete();
    tcp_write_queue_purge(&tp);
    tcp_rcv_queues_purge(&tp);
  }
  // A receive side as after a handshake with window scaling: `rcvbuf` bytes, scale 7, the whole
  // buffer offered, rcv_mss from tcp_initialize_rcv_mss() (536).
  void enable_receive(uint32_t rcvbuf = 262144) {
    tp.rcvbuf = tp.window_clamp = rcvbuf;
    tp.rx_opt.rcv_wscale = 7;
    tp.rcv_wnd = rcvbuf;
    tp.rcv_wup = tp.copied_seq = tp.rcv_nxt;
    tcp_initialize_rcv_mss(&tp);
  }
  // A data segment from the peer at stream offset `off` (bytes [off, off+len)); payload byte i is
  // the low byte of its sequence number. Runs tcp_rcv_established().
  void data(uint32_t off, uint32_t len, uint8_t flags = TCPHDR_ACK, uint32_t tsval = 0, uint16_t urg_ptr = 0) {
    sk_buff* skb = incoming({.ack_rel = tp.snd_nxt - kIsn, .payload = len, .tsval = tsval, .flags = flags,
                             .seq = kPeerIsn + off, .urg_ptr = urg_ptr});
    uint8_t* pay = skb->data + (skb->data[12] >> 4) * 4;
    for (uint32_t i = 0; i < len; ++i) pay[i] = static_cast<uint8_t>(kPeerIsn + off + i);
    tcp_rcv_established(&tp, skb, mtu, [this](sk_buff* s) { return xmit(s); });
  }
  int read(std::vector<uint8_t>* out, size_t n, int flags = 0) {
    out->assign(n, 0);
    int r = tcp_recvmsg(&tp, out->data(), n, flags, [this](sk_buff* s) { return xmit(s); });
    out->resize(r > 0 ? static_cast<size_t>(r) : 0);
    return r;
  }
  std::vector<AckField> take_acks() {
    segs.clear();
    return std::exchange(acks, {});
  }

  int xmit(sk_buff* skb) {
    auto th = TcpHdrView::parse(absl::MakeConstSpan(skb->data, skb_headlen(skb)));
    EXPECT_TRUE(th.has_value());
    if (th) {
      segs.push_back(Seg{.seq = th->seq() - kIsn, .len = skb->len - th->doff() * 4u, .flags = th->flags(),
                         .gso_segs = skb_shinfo(skb)->gso_segs, .gso_size = skb_shinfo(skb)->gso_size});
      acks.push_back(AckField{th->ack_seq() - kPeerIsn, th->window()});
      urg_ptrs.push_back(th->urg_ptr());
    }
    if (hold) {
      held.push_back(skb);
    } else {
      kfree_skb(skb);
    }
    return 0;
  }
  // The device completes every held segment; then the owner runs the TSQ handler for the sockets
  // the completions released (the stack's tx_completed()).
  void complete() {
    for (sk_buff* skb : std::exchange(held, {})) kfree_skb(skb);
    while (tcp_sock* t = tsq_pop(&tsq)) tcp_tsq_write(t, mtu, [this](sk_buff* s) { return xmit(s); });
  }
  void attach_tsq() { tp.tsq = &tsq; }
  int send(size_t n, int flags = 0, ubuf_info* uarg = nullptr) {
    std::vector<uint8_t> data(n, 0x5a);
    return tcp_sendmsg_locked(&tp, data.data(), n, flags, mtu, [this](sk_buff* s) { return xmit(s); }, uarg);
  }
  void cork(bool on) { tcp_sock_set_cork(&tp, on, mtu, [this](sk_buff* s) { return xmit(s); }); }
  void nodelay(bool on) { tcp_sock_set_nodelay(&tp, on, mtu, [this](sk_buff* s) { return xmit(s); }); }
  void push() {
    tcp_push_pending_frames(&tp, tcp_current_mss(&tp, mtu), tp.nonagle, [this](sk_buff* s) { return xmit(s); });
  }
  // Everything sent so far is acknowledged (stands in for tcp_ack() until a receive path exists).
  void ack_all() {
    if (between(tp.snd_up, tp.snd_una, tp.snd_nxt)) tp.snd_up = tp.snd_nxt;  // as tcp_clean_rtx_queue()
    tp.snd_una = tp.snd_nxt;
    tp.packets_out = 0;
    skb_queue_purge(&tp.rtx_queue);
  }
  std::vector<Seg> take() {
    acks.clear();
    urg_ptrs.clear();
    return std::exchange(segs, {});
  }

  // An incoming segment from the peer (data at the TCP header, cb filled, options parsed into
  // tp.rx_opt as tcp_rcv_established() would): ACK field `kIsn + ack_rel`, our rcv_nxt as its seq
  // unless `seq` is given, `payload` bytes, a timestamp option when tsval != 0.
  struct In {
    uint32_t ack_rel = 0;
    uint16_t window = 65535;
    uint32_t payload = 0;
    uint32_t tsval = 0;
    uint32_t tsecr = 0;
    uint8_t flags = TCPHDR_ACK;
    int64_t seq = -1;
    uint16_t urg_ptr = 0;  // the urgent pointer field (with TCPHDR_URG in flags)
  };
  sk_buff* incoming(const In& in) {
    sk_buff* skb = skbs->alloc_skb();
    skb_reserve(skb, 64);
    uint32_t hl = in.tsval != 0 ? 32 : 20;
    uint8_t* p = skb_put_zero(skb, hl + in.payload);
    TcpHdr th = *TcpHdr::at(absl::MakeSpan(p, hl));
    th.set_source(tp.dport);
    th.set_dest(tp.sport);
    th.set_seq(in.seq >= 0 ? static_cast<uint32_t>(in.seq) : tp.rcv_nxt);
    th.set_ack_seq(kIsn + in.ack_rel);
    th.set_doff(static_cast<uint8_t>(hl / 4));
    th.set_flags(in.flags);
    th.set_window(in.window);
    th.set_urg_ptr(in.urg_ptr);
    if (in.tsval != 0) {
      p[20] = p[21] = TCPOPT_NOP;
      p[22] = TCPOPT_TIMESTAMP;
      p[23] = TCPOLEN_TIMESTAMP;
      store_be32(p + 24, in.tsval);
      store_be32(p + 28, in.tsecr);
    }
    EXPECT_EQ(tcp_v4_check_segment(absl::MakeConstSpan(skb->data, skb->len), 0, 0, false, TCP_SKB_CB(skb)), 0);
    uint8_t sack_off = 0;
    tcp_parse_options(absl::MakeConstSpan(p, hl), true, &tp.rx_opt, &sack_off);
    return skb;
  }
  // tcp_ack() for an incoming ACK; frees it.
  int ack(const In& in, int flag = FLAG_UPDATE_TS_RECENT) {
    sk_buff* skb = incoming(in);
    int r = tcp_ack(&tp, skb, flag, [this](sk_buff* s) { return xmit(s); });
    kfree_skb(skb);
    return r;
  }
};

}  // namespace xmit::testing_tcp
