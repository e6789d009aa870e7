// verbs/ibv/sw/sw_divert.h — keeps the kernel from seeing what the software device's flow rules
// take when it rides on AF_PACKET: sw_divert.bpf.c attached as a tcx ingress link (detached by the
// kernel when the link fd closes, crash included) and its map of diverted flows.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"

struct bpf_object;

namespace xmit::ibv::sw {

// Must match struct divert_key in sw_divert.bpf.c.
struct DivertKey {
  uint32_t local_addr = 0;
  uint32_t remote_addr = 0;
  uint16_t local_port = 0;
  uint16_t remote_port = 0;
  uint8_t protocol = 0;
  uint8_t pad[3] = {};
};
static_assert(sizeof(DivertKey) == 16);

class SwDivert {
 public:
  // 0 or -errno (*why says which step; needs CAP_BPF/CAP_NET_ADMIN and Linux 6.6 for tcx).
  static int open(int ifindex, std::unique_ptr<SwDivert>* out, std::string* why);
  ~SwDivert();
  SwDivert(const SwDivert&) = delete;
  SwDivert& operator=(const SwDivert&) = delete;
  int add(const DivertKey& k);     // 0 or -errno
  int remove(const DivertKey& k);  // 0 or -errno
  // The link and every fd of the loaded object (program, maps, BTF).
  void for_each_fd(absl::FunctionRef<void(int fd)> f) const;

 private:
  SwDivert() = default;
  bpf_object* obj_ = nullptr;
  int link_fd_ = -1;
  int map_fd_ = -1;
};

}  // namespace xmit::ibv::sw
