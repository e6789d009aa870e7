// verbs/ibv/rx_inject.cc — loading rx_inject.bpf.c as tcx egress and ingress links, and the marked
// AF_PACKET socket that sends what is to be received.
#include "verbs/ibv/rx_inject.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "verbs/bpf_object.h"
#include "verbs/ibv/rx_inject_bpf.h"  // generated: kRxInjectBpf[], the compiled rx_inject.bpf.c
#include "verbs/ibv/rx_inject_mark.h"

namespace xmit::ibv {
namespace {

int fail(std::string* why, int err, const std::string& what) {
  if (why != nullptr) *why = what + ": " + strerror(-err);
  return err;
}

}  // namespace

int RxInject::open(int ifindex, std::unique_ptr<RxInject>* out, std::string* why) {
  std::unique_ptr<RxInject> r(new RxInject());
  r->ifindex_ = ifindex;
  LibbpfQuiet quiet;
  int err = bpf_object_load_embedded(kRxInjectBpf, sizeof kRxInjectBpf, "xmit_rx_inject", quiet, &r->obj_, why);
  if (err < 0) return err;
  bpf_program* pout = bpf_object__find_program_by_name(r->obj_, "xmit_rx_inject_out");
  bpf_program* pin = bpf_object__find_program_by_name(r->obj_, "xmit_rx_inject_in");
  if (pout == nullptr || pin == nullptr) return fail(why, -ENOENT, "inject programs");
  r->in_link_ = bpf_link_create(bpf_program__fd(pin), ifindex, bpf_attach_type(kBpfTcxIngress), nullptr);
  if (r->in_link_ < 0) return fail(why, r->in_link_ < -1 ? r->in_link_ : -errno, "tcx ingress link");
  r->out_link_ = bpf_link_create(bpf_program__fd(pout), ifindex, bpf_attach_type(kBpfTcxEgress), nullptr);
  if (r->out_link_ < 0) return fail(why, r->out_link_ < -1 ? r->out_link_ : -errno, "tcx egress link");
  // Protocol 0: the socket receives nothing (packet(7)); it only sends.
  r->pkt_fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (r->pkt_fd_ < 0) return fail(why, -errno, "AF_PACKET socket");
  const uint32_t mark = XMIT_RX_INJECT_MARK;
  if (setsockopt(r->pkt_fd_, SOL_SOCKET, SO_MARK, &mark, sizeof mark) < 0) return fail(why, -errno, "SO_MARK");
  *out = std::move(r);
  return 0;
}

RxInject::~RxInject() {
  if (pkt_fd_ >= 0) close(pkt_fd_);
  if (out_link_ >= 0) close(out_link_);  // the kernel detaches the programs
  if (in_link_ >= 0) close(in_link_);
  if (obj_ != nullptr) bpf_object__close(obj_);
}

int RxInject::inject(const uint8_t* frame, uint32_t len) {
  if (len < ETH_HLEN) return -EINVAL;
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_ifindex = ifindex_;
  sll.sll_halen = 6;
  memcpy(sll.sll_addr, frame, 6);
  ssize_t n = sendto(pkt_fd_, frame, len, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&sll), sizeof sll);
  return n < 0 ? -errno : n == ssize_t(len) ? 0 : -EIO;
}

void RxInject::for_each_fd(absl::FunctionRef<void(int fd)> f) const {
  bpf_object_for_each_fd(obj_, f);
  if (in_link_ >= 0) f(in_link_);
  if (out_link_ >= 0) f(out_link_);
  if (pkt_fd_ >= 0) f(pkt_fd_);
}

}  // namespace xmit::ibv
