// verbs/xdp/xdp_demo.cc — xmit-xdp-demo: sends UDP datagrams through an AF_XDP queue, steers their
// local port so the echoes come back on the queue, and shows that the kernel's UDP counters stay put.
// Run inside the bed's namespace a (scripts/demo does); exit 0 only if every echo came back.
#include <arpa/inet.h>
#include <poll.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "stack/dev/pcap.h"
#include "verbs/xdp/xdp_netdev.h"
#include "verbs/xdp/xdp_udp_frame.h"

using namespace xmit;
using namespace xmit::xdp;

namespace {

int usage() {
  fprintf(stderr,
          "usage: xmit-xdp-demo --if IF --peer-mac MAC --src IP --dst IP [--queue N] [--sport P]\n"
          "                     [--dport P] [--count N] [--mode auto|native|generic] [--pcap FILE]\n"
          "XMIT_PCAP=FILE in the environment is the same as --pcap FILE.\n");
  return 2;
}

std::string ip_str(uint32_t a) {
  char b[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, b, sizeof b);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  XdpOptions opt;
  std::string peer_mac, src, dst;
  std::string pcap_path = getenv("XMIT_PCAP") ? getenv("XMIT_PCAP") : "";
  uint16_t sport = 40007, dport = 7;
  int count = 4;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--if") opt.ifname = v;
    else if (k == "--queue") opt.queue_id = uint32_t(atoi(v.c_str()));
    else if (k == "--peer-mac") peer_mac = v;
    else if (k == "--src") src = v;
    else if (k == "--dst") dst = v;
    else if (k == "--sport") sport = uint16_t(atoi(v.c_str()));
    else if (k == "--dport") dport = uint16_t(atoi(v.c_str()));
    else if (k == "--count") count = atoi(v.c_str());
    else if (k == "--pcap") pcap_path = v;
    else if (k == "--mode" && v == "auto") opt.mode = XdpMode::kAuto;
    else if (k == "--mode" && v == "native") opt.mode = XdpMode::kNative;
    else if (k == "--mode" && v == "generic") opt.mode = XdpMode::kGeneric;
    else return usage();
  }
  UdpEndpoints ep;
  if (opt.ifname.empty() || !parse_mac(peer_mac, ep.dst_mac) || inet_pton(AF_INET, src.c_str(), &ep.saddr) != 1 ||
      inet_pton(AF_INET, dst.c_str(), &ep.daddr) != 1 || count < 1 || count > 64)
    return usage();
  ep.sport = sport;
  ep.dport = dport;

  std::unique_ptr<XdpNetdev> dev;
  std::string why;
  if (int err = XdpNetdev::open(opt, &dev, &why); err < 0) {
    fprintf(stderr, "xmit-xdp-demo: cannot open AF_XDP queue: %s\n", why.c_str());
    return 1;
  }
  memcpy(ep.src_mac, dev->mac(), 6);
  // Every frame the queue carries, as tcpdump would have seen it had it not bypassed the kernel.
  PcapWriter pcap;
  if (!pcap_path.empty()) {
    if (int err = pcap.open(pcap_path.c_str()); err < 0) {
      fprintf(stderr, "xmit-xdp-demo: XMIT_PCAP=%s: %s\n", pcap_path.c_str(), strerror(-err));
      return 1;
    }
  }
  PcapNetdev recorded(*dev, pcap);
  Netdev& q = pcap.is_open() ? static_cast<Netdev&>(recorded) : static_cast<Netdev&>(*dev);
  auto stamp = [&] {
    recorded.set_now(uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::system_clock::now().time_since_epoch()).count()));
  };
  char where[96];
  snprintf(where, sizeof where, "%s queue %u (AF_XDP, %s XDP, %s)", dev->ifname().c_str(), dev->queue_id(),
           dev->mode_name(), dev->zerocopy() ? "zero-copy" : "copy mode");
  printf("xmit-xdp-demo: %s, MTU %u, steering udp %s:%u to the queue\n", where, dev->features().mtu,
         src.c_str(), sport);

  FlowKey key{.protocol = IPPROTO_UDP, .local_addr = ep.saddr, .local_port = htons(sport)};
  if (int err = q.steer(key); err < 0) {
    fprintf(stderr, "xmit-xdp-demo: steer: %s\n", strerror(-err));
    return 1;
  }
  auto before = read_snmp("Udp");

  int sent = 0, done = 0, received = 0, mismatched = 0;
  for (int i = 1; i <= count; ++i) {
    std::string payload = "xmit demo datagram " + std::to_string(i);
    std::vector<uint8_t> frame = build_udp_frame(ep, payload, uint16_t(i));
    FrameSeg seg{frame.data(), uint32_t(frame.size())};
    TxFrame tf{.segs = absl::MakeConstSpan(&seg, 1), .cookie = uint64_t(i)};
    stamp();
    if (int r = q.xmit(absl::MakeConstSpan(&tf, 1)); r != 1) {
      fprintf(stderr, "xmit-xdp-demo: xmit returned %d\n", r);
      return 1;
    }
    ++sent;
    printf("tx #%d  %-48s %s:%u -> %s:%u  %zu B  \"%s\"\n", i, where, src.c_str(), sport, dst.c_str(), dport,
           frame.size(), payload.c_str());
    // The frame is copied into the UMEM: wait for its completion before the vector goes away.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (done < i && std::chrono::steady_clock::now() < deadline) q.poll_tx([&](uint64_t) { ++done; });
  }

  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (received < count && std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{dev->wait_fd(), POLLIN, 0};
    poll(&pfd, 1, 100);
    stamp();
    q.poll_rx(16, [&](const RxFrame& f) {
      ParsedUdp u;
      ++received;
      if (!parse_udp_frame(f.data, f.len, &u)) {
        ++mismatched;
        printf("rx #%d  %-48s %u B, not UDP/IPv4\n", received, where, f.len);
        return false;
      }
      bool echo = u.sport == dport && u.dport == sport && u.payload.rfind("xmit demo datagram ", 0) == 0;
      if (!echo) ++mismatched;
      printf("rx #%d  %-48s %s:%u -> %s:%u  %u B  \"%s\"%s\n", received, where, ip_str(u.saddr).c_str(), u.sport,
             ip_str(u.daddr).c_str(), u.dport, f.len, u.payload.c_str(), echo ? "  (echo)" : "  (unexpected)");
      return false;
    });
  }
  q.unsteer(key);
  int pcap_err = pcap.is_open() ? pcap.close() : 0;
  uint64_t recorded_frames = pcap.packets();
  auto after = read_snmp("Udp");

  printf("\n  %-40s %10s\n", "summary", "");
  printf("  %-40s %10d\n", "frames sent via AF_XDP", sent);
  printf("  %-40s %10d\n", "TX completions reaped", done);
  printf("  %-40s %10d\n", "frames received via AF_XDP", received);
  bool unchanged = !before.empty();
  for (const char* c : {"InDatagrams", "NoPorts", "InErrors", "OutDatagrams"}) {
    long long b = before[c], a = after[c];
    unchanged = unchanged && a == b;
    char label[64], val[48];
    snprintf(label, sizeof label, "kernel Udp %s (netns of %s)", c, dev->ifname().c_str());
    snprintf(val, sizeof val, "%lld -> %lld", b, a);
    printf("  %-40s %10s%s\n", label, val, a == b ? "" : "  CHANGED");
  }
  if (!pcap_path.empty()) {
    printf("  %-40s %10llu%s\n", "frames recorded in XMIT_PCAP", (unsigned long long)recorded_frames,
           pcap_err < 0 ? "  (write error)" : "");
  }
  bool ok = pcap_err == 0 && sent == count && done == count && received == count && mismatched == 0 && unchanged;
  printf("\n%s\n", ok ? "xmit-xdp-demo: OK: every datagram went out and came back through the AF_XDP queue"
                      : "xmit-xdp-demo: FAILED (see above)");
  return ok ? 0 : 1;
}
