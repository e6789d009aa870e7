// verbs/ibv/rx_inject.h — hands a received frame to the kernel as if the interface had received
// it: an AF_PACKET socket sends it with XMIT_RX_INJECT_MARK and rx_inject.bpf.c, attached as tcx
// egress and ingress links of the interface, turns it round onto the interface's receive path
// (netif_rx(): skb->dev, skb_iif and the route the original would have had). The verbs backend's
// way back for what a flow rule took but the kernel must have (a UDP datagram's first fragment).
// Needs CAP_BPF and CAP_NET_ADMIN (tcx: Linux 6.6); the links go when their fds close.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"

struct bpf_object;

namespace xmit::ibv {

class RxInject {
 public:
  // 0 or -errno (*why says which step).
  static int open(int ifindex, std::unique_ptr<RxInject>* out, std::string* why);
  ~RxInject();
  RxInject(const RxInject&) = delete;
  RxInject& operator=(const RxInject&) = delete;
  // The Ethernet frame, as received: 0 or -errno (the AF_PACKET send's; nonblocking).
  int inject(const uint8_t* frame, uint32_t len);
  // The socket, the links and every fd of the loaded object (programs, maps, BTF).
  void for_each_fd(absl::FunctionRef<void(int fd)> f) const;

 private:
  RxInject() = default;
  bpf_object* obj_ = nullptr;
  int out_link_ = -1;
  int in_link_ = -1;
  int pkt_fd_ = -1;
  int ifindex_ = 0;
};

}  // namespace xmit::ibv
