// verbs/ibv/sw/sw_divert.cc — loading sw_divert.bpf.c and attaching it as a tcx ingress link.
#include "verbs/ibv/sw/sw_divert.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "verbs/bpf_object.h"
#include "verbs/ibv/sw_divert_bpf.h"  // generated: kSwDivertBpf[], the compiled sw_divert.bpf.c

namespace xmit::ibv::sw {
namespace {

int fail(std::string* why, int err, const std::string& what) {
  if (why != nullptr) *why = what + ": " + strerror(-err);
  return err;
}

}  // namespace

int SwDivert::open(int ifindex, std::unique_ptr<SwDivert>* out, std::string* why) {
  std::unique_ptr<SwDivert> d(new SwDivert());
  LibbpfQuiet quiet;
  int err = bpf_object_load_embedded(kSwDivertBpf, sizeof kSwDivertBpf, "xmit_divert", quiet, &d->obj_, why);
  if (err < 0) return err;
  bpf_program* prog = bpf_object__find_program_by_name(d->obj_, "xmit_divert_prog");
  bpf_map* map = bpf_object__find_map_by_name(d->obj_, "xmit_divert");
  if (prog == nullptr || map == nullptr) return fail(why, -ENOENT, "divert program or map");
  d->map_fd_ = bpf_map__fd(map);
  d->link_fd_ = bpf_link_create(bpf_program__fd(prog), ifindex, bpf_attach_type(kBpfTcxIngress), nullptr);
  if (d->link_fd_ < 0) return fail(why, d->link_fd_ < -1 ? d->link_fd_ : -errno, "tcx ingress link");
  *out = std::move(d);
  return 0;
}

SwDivert::~SwDivert() {
  if (link_fd_ >= 0) close(link_fd_);  // the kernel detaches the program
  if (obj_ != nullptr) bpf_object__close(obj_);
}

int SwDivert::add(const DivertKey& k) {
  uint8_t one = 1;
  return bpf_map_update_elem(map_fd_, &k, &one, BPF_ANY) < 0 ? -errno : 0;
}

void SwDivert::for_each_fd(absl::FunctionRef<void(int fd)> f) const {
  bpf_object_for_each_fd(obj_, f);
  if (link_fd_ >= 0) f(link_fd_);
}

int SwDivert::remove(const DivertKey& k) { return bpf_map_delete_elem(map_fd_, &k) < 0 ? -errno : 0; }

}  // namespace xmit::ibv::sw
