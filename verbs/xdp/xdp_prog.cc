// verbs/xdp/xdp_prog.cc — loading, attaching and editing the steering program; see xdp_prog.h.
// Kernel counterpart: bpf_xdp_link_attach() and the XSKMAP / hash map update paths.
#include "verbs/xdp/xdp_prog.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "verbs/bpf_object.h"
#include "verbs/xdp/xmit_xdp_bpf.h"  // generated: kXmitXdpBpf[], the compiled xmit_xdp.bpf.c

namespace xmit::xdp {
namespace {

int fail(std::string* why, int err, const std::string& what) {
  if (why != nullptr) *why = what + ": " + strerror(-err);
  return err;
}

}  // namespace

int steer_key_from_flow(const FlowKey& flow, SteerKey* key) {
  if (flow.protocol != IPPROTO_UDP && flow.protocol != IPPROTO_TCP) return -EINVAL;
  // The program looks up the exact 5-tuple, then (remote 0, port 0): a half wildcard never matches.
  if ((flow.remote_addr == 0) != (flow.remote_port == 0)) return -EINVAL;
  if (flow.local_port == 0 || flow.local_addr == 0) return -EINVAL;
  *key = SteerKey{};
  key->protocol = flow.protocol;
  key->local_addr = flow.local_addr;
  key->local_port = flow.local_port;
  key->remote_addr = flow.remote_addr;
  key->remote_port = flow.remote_port;
  return 0;
}

void XdpProg::for_each_fd(absl::FunctionRef<void(int fd)> f) const {
  bpf_object_for_each_fd(obj_, f);
  if (link_fd_ >= 0) f(link_fd_);
}

int XdpProg::open(int ifindex, XdpMode mode, std::unique_ptr<XdpProg>* out, std::string* why) {
  std::unique_ptr<XdpProg> p(new XdpProg());
  LibbpfQuiet quiet;

  if (int err = bpf_object_load_embedded(kXmitXdpBpf, sizeof kXmitXdpBpf, "xmit_xdp", quiet, &p->obj_, why); err < 0)
    return err;

  bpf_program* prog = bpf_object__find_program_by_name(p->obj_, "xmit_steer_prog");
  bpf_map* steer = bpf_object__find_map_by_name(p->obj_, "xmit_steer");
  bpf_map* xsks = bpf_object__find_map_by_name(p->obj_, "xmit_xsks");
  bpf_map* no_accept = bpf_object__find_map_by_name(p->obj_, "xmit_no_accept");
  bpf_map* kernel_flows = bpf_object__find_map_by_name(p->obj_, "xmit_kernel_flows");
  if (prog == nullptr || steer == nullptr || xsks == nullptr || no_accept == nullptr || kernel_flows == nullptr)
    return fail(why, -ENOENT, "embedded BPF object lacks one of its program and maps");
  p->steer_fd_ = bpf_map__fd(steer);
  p->xsks_fd_ = bpf_map__fd(xsks);
  p->no_accept_fd_ = bpf_map__fd(no_accept);
  p->kernel_flows_fd_ = bpf_map__fd(kernel_flows);

  // Auto: flags 0 lets the kernel pick driver mode when the driver has ndo_bpf, generic otherwise.
  // If driver mode is refused (MTU, missing features) auto falls back to an explicit generic link.
  int err = 0;
  if (mode != XdpMode::kGeneric) {
    p->link_ = bpf_program__attach_xdp(prog, ifindex);
    if (p->link_ == nullptr) {
      err = -errno;
      // EBUSY: a program (another XdpNetdev's, or anyone's) is attached already; one per interface.
      if (mode == XdpMode::kNative || err == -EBUSY || err == -EEXIST)
        return fail(why, err, "bpf_program__attach_xdp" + quiet.last());
    } else {
      p->link_fd_ = bpf_link__fd(p->link_);
    }
  }
  if (p->link_fd_ < 0) {
    LIBBPF_OPTS(bpf_link_create_opts, lopts, .flags = XDP_FLAGS_SKB_MODE);
    int fd = bpf_link_create(bpf_program__fd(prog), ifindex, BPF_XDP, &lopts);
    if (fd < 0) {
      std::string what = "attach XDP program in generic mode" + quiet.last();
      if (err != 0) what += std::string(" after driver mode failed: ") + strerror(-err);
      return fail(why, fd, what);
    }
    p->link_fd_ = fd;  // the kernel gives bpf fds O_CLOEXEC
    p->own_link_fd_ = true;
  }

  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  if (int qerr = bpf_xdp_query(ifindex, 0, &q); qerr < 0)
    return fail(why, qerr, "bpf_xdp_query" + quiet.last());
  if (q.attach_mode != XDP_ATTACHED_DRV && q.attach_mode != XDP_ATTACHED_SKB)
    return fail(why, -EBUSY, "unexpected XDP attach mode " + std::to_string(q.attach_mode));
  p->native_ = q.attach_mode == XDP_ATTACHED_DRV;
  if (mode == XdpMode::kNative && !p->native_)
    return fail(why, -EOPNOTSUPP, "interface has no driver-mode XDP");
  *out = std::move(p);
  return 0;
}

XdpProg::~XdpProg() {
  // Closing the link detaches the program; the maps go with the object.
  if (link_ != nullptr) bpf_link__destroy(link_);
  if (own_link_fd_ && link_fd_ >= 0) close(link_fd_);
  if (obj_ != nullptr) bpf_object__close(obj_);
}

int XdpProg::set_xsk(uint32_t queue_id, int xsk_fd) {
  uint32_t fd = uint32_t(xsk_fd);
  return bpf_map_update_elem(xsks_fd_, &queue_id, &fd, BPF_ANY);
}

int XdpProg::set_accepting(uint32_t queue_id, bool on) {
  uint8_t v = on ? 0 : 1;
  return bpf_map_update_elem(no_accept_fd_, &queue_id, &v, BPF_ANY);
}

bool XdpProg::accepting(uint32_t queue_id) const {
  uint8_t v = 0;
  return bpf_map_lookup_elem(no_accept_fd_, &queue_id, &v) != 0 || v == 0;
}

int XdpProg::keep_in_kernel(const FlowKey& flow) {
  SteerKey key;
  if (int err = steer_key_from_flow(flow, &key); err < 0) return err;
  if (flow.protocol != IPPROTO_TCP || flow.remote_port == 0) return -EINVAL;
  uint8_t one = 1;
  return bpf_map_update_elem(kernel_flows_fd_, &key, &one, BPF_ANY);
}

int XdpProg::steer(const FlowKey& flow) {
  SteerKey key;
  if (int err = steer_key_from_flow(flow, &key); err < 0) return err;
  uint8_t one = 1;
  int err = bpf_map_update_elem(steer_fd_, &key, &one, BPF_NOEXIST);
  if (err == -E2BIG) return -ENOSPC;  // hash map full
  return err;
}

int XdpProg::unsteer(const FlowKey& flow) {
  SteerKey key;
  if (int err = steer_key_from_flow(flow, &key); err < 0) return err;
  return bpf_map_delete_elem(steer_fd_, &key);
}

}  // namespace xmit::xdp
