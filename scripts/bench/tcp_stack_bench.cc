// scripts/bench/tcp_stack_bench.cc — the in-stack cost of TCP per 1448 B segment on one ESTABLISHED
// tcp_sock (MSS 1448 with timestamps, window scale 7, TCP_NODELAY, GSO off, checksums by the device):
//   send:    tcp_sendmsg_locked() of 1448 B (one segment each) or of 64 KiB (size_goal segments),
//            each segment handed to a null device (the transmit function frees it), plus the peer's
//            ACKs (one per two segments, as a Linux receiver sends them) through tcp_rcv_established()
//            -> tcp_ack() releasing the rtx queue, so the window never closes;
//   receive: tcp_rcv_established() of an in-order 1448 B data segment and tcp_recvmsg() of it, the
//            ACKs it sends going to the null device;
//   rx_frame: what the receive row pays outside the stack (an skb from the pool, the frame copied
//            into it, freed): the device's share, to subtract.
// The kernel's counterpart, as root: a kernel TCP stream over loopback in a network namespace of this
// process's own (lo at MTU 1500 with TSO/GSO off: one 1448 B segment at a time through the whole
// kernel stack), writer and reader threads, the process's CPU time (both ends, syscalls and copies
// included) per 1448 B of payload. It bounds what the in-stack send + receive rows add up to.
//   build/scripts/bench/tcp_stack_bench [--benchmark_repetitions=N ...]   (scripts/bench/tcp_stack)
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"
#include "stack/skb/pool.h"
#include "stack/tcp/tcp_input.h"
#include "stack/tcp/tcp_input_parse.h"
#include "stack/tcp/tcp_mss.h"
#include "stack/tcp/tcp_output_ack.h"
#include "stack/tcp/tcp_recvmsg.h"
#include "stack/tcp/tcp_sendmsg.h"
#include "stack/wire/tcp.h"
#include "tests/stack/count_new.h"

namespace xmit {
namespace {

// setsockopt names from <netinet/tcp.h>, whose TCPOPT_* macros clash with stack/wire/tcp.h's constants.
constexpr int kTcpNodelay = 1, kTcpMaxseg = 2;
constexpr uint32_t kMtu = 1500;
constexpr uint32_t kMss = 1448;
constexpr uint32_t kRcvBuf = 262144;
constexpr uint32_t kIsn = 1000, kPeerIsn = 5000;

uint64_t now_us() {  // the engine's clock (CLOCK_MONOTONIC_COARSE), in tcp_mstamp's unit
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

// One tcp_sock as after a handshake (tests/tcp/tcp_link.cc's setup_peer()), its pools, and the
// peer's side of the wire: frames the peer would send, built in skbs of this socket's pool.
struct Bed {
  std::unique_ptr<BufPool> heads, pages;
  std::unique_ptr<SkbPool> skbs;
  tcp_sock tp;
  uint32_t peer_seq = kPeerIsn;  // the peer's next sequence number
  uint32_t peer_tsval = 1;
  uint32_t last_tsval = 0;  // our latest TSval, for the peer's TSecr
  uint64_t segs_out = 0, data_segs_out = 0;
  bool ok = false;

  Bed() {
    if (BufPool::create(4096, 2048, &heads) != 0 || BufPool::create(64, 32768, &pages) != 0 ||
        SkbPool::create(4096, heads.get(), &skbs) != 0)
      return;
    tp.skb_pool = skbs.get();
    tp.page_pool = pages.get();
    tp.saddr = htonl(0xc6120001);
    tp.daddr = htonl(0xc6120002);
    tp.sport = 40000;
    tp.dport = 5001;
    tp.sk_state = TCP_ESTABLISHED;  // tcp_sendmsg_locked() sends only when connected
    tp.snd_una = tp.snd_nxt = tp.write_seq = tp.pushed_seq = tp.snd_up = kIsn;
    tp.rcv_nxt = tp.rcv_wup = tp.copied_seq = tp.snd_wl1 = kPeerIsn;
    tp.snd_wnd = tp.max_window = 65535u << 7;
    tp.rx_opt.tstamp_ok = tp.rx_opt.wscale_ok = true;
    tp.rx_opt.snd_wscale = tp.rx_opt.rcv_wscale = 7;
    tp.tcp_header_len = 32;
    tcp_sync_mss(&tp, kMtu);
    tcp_sk_setup_caps(&tp, NetdevFeatures{.ip_csum = true, .l4_csum = true}, /*sw_gso=*/false);
    tp.nonagle = TCP_NAGLE_OFF;
    tp.rcvbuf = tp.window_clamp = tp.rcv_wnd = kRcvBuf;
    tcp_initialize_rcv_mss(&tp);
    tp.tcp_mstamp = now_us();
    ok = tp.mss_cache == kMss;
  }
  ~Bed() {
    tcp_write_queue_purge(&tp);
    tcp_rcv_queues_purge(&tp);
  }

  // The null device: counts the segment, remembers its TSval, frees it.
  int xmit(sk_buff* skb) {
    ++segs_out;
    if (skb->len > tp.tcp_header_len) ++data_segs_out;
    last_tsval = load_be32(skb->data + 24);  // NOP NOP TS: TSval at 24 (every segment has it)
    kfree_skb(skb);
    return 0;
  }

  // A segment from the peer: 32 B header (ACK `ack`, window 65535 << 7, timestamps), `len` bytes of
  // `payload`, checked as tcp_v4_rcv() does (checksum left to the device). nullptr if no skb.
  sk_buff* from_peer(uint32_t ack, const uint8_t* payload, uint32_t len) {
    sk_buff* skb = skbs->alloc_skb();
    if (skb == nullptr) return nullptr;
    skb_reserve(skb, 64);
    uint8_t* p = skb_put_data(skb, payload - 32, 32 + len);  // header room in front of payload
    TcpHdr th = *TcpHdr::at(absl::MakeSpan(p, 32));
    th.set_source(tp.dport);
    th.set_dest(tp.sport);
    th.set_seq(peer_seq);
    th.set_ack_seq(ack);
    th.set_doff(8);
    th.set_flags(len != 0 ? TCPHDR_ACK | TCPHDR_PSH : TCPHDR_ACK);
    th.set_window(65535);
    th.set_check(sum16{0});
    th.set_urg_ptr(0);
    p[20] = p[21] = TCPOPT_NOP;
    p[22] = TCPOPT_TIMESTAMP;
    p[23] = TCPOLEN_TIMESTAMP;
    store_be32(p + 24, peer_tsval++);
    store_be32(p + 28, last_tsval);
    if (tcp_v4_check_segment(absl::MakeConstSpan(skb->data, skb->len), tp.daddr, tp.saddr, false,
                             TCP_SKB_CB(skb)) != 0) {
      kfree_skb(skb);
      return nullptr;
    }
    peer_seq += len;
    return skb;
  }
};

// 32 bytes of header room, then the payload (from_peer() copies both in one go).
struct Frame {
  uint8_t bytes[32 + 65536];
  uint8_t* payload() { return bytes + 32; }
};

// XMIT_TCP_BENCH_ITERATIONS=N: exactly N iterations per run (one run, no calibration), for counting
// instructions under callgrind: two counts' difference is the loop's cost without the set-up.
void fixed_iterations(benchmark::internal::Benchmark* b) {
  if (const char* n = std::getenv("XMIT_TCP_BENCH_ITERATIONS"); n != nullptr && std::atoll(n) > 0)
    b->Iterations(std::atoll(n));
}

void finish(benchmark::State& state, double segs, size_t news0, const Bed& bed) {
  const size_t news = testing_support::operator_new_calls() - news0;  // before the counters' own
  const double n = static_cast<double>(state.iterations());
  state.counters["segs"] = segs / n;  // 1448 B segments per iteration
  state.counters["news_per_seg"] = static_cast<double>(news) / segs;
  state.counters["cwnd"] = bed.tp.snd_cwnd;
  state.SetBytesProcessed(static_cast<int64_t>(segs) * kMss);
}

// Args: bytes per send (1448: one segment each; 65536: size_goal segments). Sender side. `tso`:
// the device segments (tcp_sk_setup_caps() with TSO: GSO skbs of up to 64 KiB leave the stack
// whole; the AF_XDP queue cuts them during its copy into the UMEM, outside this count).
void tcp_send_bench(benchmark::State& state, bool tso) {
  const uint32_t size = static_cast<uint32_t>(state.range(0));
  auto bed = std::make_unique<Bed>();
  auto frame = std::make_unique<Frame>();
  std::vector<uint8_t> data(size, 0x5a);
  if (!bed->ok) {
    state.SkipWithError("pools or MSS");
    return;
  }
  tcp_sock& tp = bed->tp;
  if (tso) {
    tcp_sk_setup_caps(&tp, NetdevFeatures{.ip_csum = true, .l4_csum = true, .tso = true, .tso_max_size = 65536},
                      /*sw_gso=*/false);
  }
  auto xmit = [&](sk_buff* skb) { return bed->xmit(skb); };
  // The peer ACKs every second segment sent, then the rest (its delayed ACK).
  auto peer_acks = [&]() -> bool {
    while (tp.snd_una != tp.snd_nxt) {
      uint32_t ack = after(tp.snd_nxt, tp.snd_una + 2 * kMss) ? tp.snd_una + 2 * kMss : tp.snd_nxt;
      sk_buff* skb = bed->from_peer(ack, frame->payload(), 0);
      if (skb == nullptr) return false;
      tcp_rcv_established(&tp, skb, kMtu, xmit);
    }
    return true;
  };
  // Warm-up: slow start opens cwnd over the first sends.
  for (int i = 0; i < 200; ++i) {
    if (tcp_sendmsg_locked(&tp, data.data(), size, 0, kMtu, xmit) != static_cast<int>(size) || !peer_acks()) {
      state.SkipWithError("warm-up send");
      return;
    }
  }
  const size_t news0 = testing_support::operator_new_calls();
  for (auto _ : state) {
    tp.tcp_mstamp = now_us();
    if (tcp_sendmsg_locked(&tp, data.data(), size, 0, kMtu, xmit) != static_cast<int>(size)) {
      state.SkipWithError("tcp_sendmsg_locked");
      break;
    }
    if (!peer_acks()) {
      state.SkipWithError("no skb for the peer's ACK");
      break;
    }
  }
  if (tp.write_seq != tp.snd_una) state.SkipWithError("data left unacknowledged");
  // Every send was taken whole and acknowledged (sequence numbers wrap: count in 64 bits).
  finish(state, static_cast<double>(state.iterations()) * size / kMss, news0, *bed);
}
void BM_TcpSend(benchmark::State& state) { tcp_send_bench(state, false); }
void BM_TcpSendTso(benchmark::State& state) { tcp_send_bench(state, true); }
BENCHMARK(BM_TcpSend)->ArgName("bytes")->Arg(1448)->Arg(65536)->Apply(fixed_iterations);
BENCHMARK(BM_TcpSendTso)->ArgName("bytes")->Arg(1448)->Arg(65536)->Apply(fixed_iterations);

// Receiver side: one in-order 1448 B segment (acking nothing new) through tcp_rcv_established(),
// then tcp_recvmsg() of it; our ACKs (every second segment) go to the null device.
void BM_TcpReceive(benchmark::State& state) {
  auto bed = std::make_unique<Bed>();
  auto frame = std::make_unique<Frame>();
  std::memset(frame->payload(), 0x5a, kMss);
  static uint8_t out[65536];
  if (!bed->ok) {
    state.SkipWithError("pools or MSS");
    return;
  }
  tcp_sock& tp = bed->tp;
  auto xmit = [&](sk_buff* skb) { return bed->xmit(skb); };
  const size_t news0 = testing_support::operator_new_calls();
  for (auto _ : state) {
    tp.tcp_mstamp = now_us();
    sk_buff* skb = bed->from_peer(tp.snd_nxt, frame->payload(), kMss);
    if (skb == nullptr) {
      state.SkipWithError("no skb");
      break;
    }
    tcp_rcv_established(&tp, skb, kMtu, xmit);
    if (tcp_recvmsg(&tp, out, sizeof(out), 0, xmit) != static_cast<int>(kMss)) {
      state.SkipWithError("tcp_recvmsg did not return the segment");
      break;
    }
  }
  const double segs = static_cast<double>(state.iterations());  // each read returned one segment
  state.counters["acks_per_seg"] = static_cast<double>(bed->segs_out) / segs;
  finish(state, segs, news0, *bed);
}
BENCHMARK(BM_TcpReceive)->Apply(fixed_iterations);

// The receive row's share outside the stack: an skb from the pool, a 1480 B frame copied in and its
// header checked (tcp_v4_check_segment), freed.
void BM_RxFrame(benchmark::State& state) {
  auto bed = std::make_unique<Bed>();
  auto frame = std::make_unique<Frame>();
  if (!bed->ok) {
    state.SkipWithError("pools or MSS");
    return;
  }
  const size_t news0 = testing_support::operator_new_calls();
  for (auto _ : state) {
    sk_buff* skb = bed->from_peer(kIsn, frame->payload(), kMss);
    if (skb == nullptr) {
      state.SkipWithError("no skb");
      break;
    }
    kfree_skb(skb);
  }
  finish(state, static_cast<double>(state.iterations()), news0, *bed);
}
BENCHMARK(BM_RxFrame)->Apply(fixed_iterations);

// The kernel: this process's own network namespace (the calling thread's; the reader thread is
// created after and inherits it), lo at MTU 1500 without TSO/GSO. "" or why not.
const char* kernel_bed() {
  static const char* why = []() -> const char* {
    if (geteuid() != 0) return "not root: no namespace for the kernel comparison";
    if (unshare(CLONE_NEWNET) != 0) return "unshare(CLONE_NEWNET) failed";
    if (std::system("ip link set lo mtu 1500 up && ethtool -K lo tso off gso off >/dev/null 2>&1") != 0)
      return "ip link set lo mtu 1500 / ethtool -K lo tso off gso off failed";
    return "";
  }();
  return why;
}

// Args: bytes per write(). A kernel TCP connection over lo (TCP_NODELAY on the writer), a reader
// thread reading 64 KiB at a time; process CPU time per 1448 B of payload.
void BM_KernelTcpStream_lo(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  if (const char* why = kernel_bed(); *why != '\0') {
    state.SkipWithError(why);
    return;
  }
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{.sin_family = AF_INET, .sin_port = 0, .sin_addr = {htonl(INADDR_LOOPBACK)}};
  socklen_t al = sizeof a;
  int one = 1;
  if (bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(ls, 1) != 0 ||
      getsockname(ls, reinterpret_cast<sockaddr*>(&a), &al) != 0) {
    close(ls);
    state.SkipWithError("listen on lo");
    return;
  }
  int c = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(c, IPPROTO_TCP, kTcpNodelay, &one, sizeof one);
  if (connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(c);
    close(ls);
    state.SkipWithError("connect on lo");
    return;
  }
  int s = accept(ls, nullptr, nullptr);
  close(ls);
  int mss = 0;
  socklen_t ml = sizeof mss;
  getsockopt(c, IPPROTO_TCP, kTcpMaxseg, &mss, &ml);
  std::atomic<uint64_t> got{0};
  std::thread reader([&] {
    static uint8_t buf[65536];
    for (;;) {
      ssize_t r = read(s, buf, sizeof buf);
      if (r <= 0) break;
      got.fetch_add(static_cast<uint64_t>(r), std::memory_order_relaxed);
    }
  });
  std::vector<uint8_t> data(size, 0x5a);
  uint64_t put = 0;
  for (auto _ : state) {
    const uint8_t* p = data.data();
    size_t left = size;
    while (left > 0) {
      ssize_t w = write(c, p, left);
      if (w <= 0) break;
      p += w;
      left -= static_cast<size_t>(w);
    }
    if (left != 0) {
      state.SkipWithError("write failed");
      break;
    }
    put += size;
  }
  shutdown(c, SHUT_WR);
  reader.join();
  close(c);
  close(s);
  const double segs = static_cast<double>(put) / kMss;
  state.counters["segs"] = segs / static_cast<double>(state.iterations());
  state.counters["mss"] = mss;
  state.counters["read_ok"] = got.load() == put ? 1 : 0;
  state.SetBytesProcessed(static_cast<int64_t>(put));
}
BENCHMARK(BM_KernelTcpStream_lo)->ArgName("bytes")->Arg(1448)->Arg(65536)->MeasureProcessCPUTime();

}  // namespace
}  // namespace xmit

BENCHMARK_MAIN();
