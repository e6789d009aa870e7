// verbs/xdp/xdp_prog.h — loads the embedded steering program (xmit_xdp.bpf.c), attaches it to an
// interface through a bpf_link (detached by the kernel when the link's last fd closes, crash included)
// and edits its flow and XSK maps. Kernel counterpart: dev_xdp_attach_link(), net/core/dev.c.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "stack/dev/netdev.h"

struct bpf_object;
struct bpf_link;

namespace xmit::xdp {

enum class XdpMode {
  kAuto,     // driver (native) mode where the interface supports it, generic (SKB) mode otherwise
  kNative,   // driver mode or fail
  kGeneric,  // generic (SKB) mode
};

// The steering map's key; must match struct steer_key in xmit_xdp.bpf.c. Network byte order.
struct SteerKey {
  uint32_t local_addr = 0;
  uint32_t remote_addr = 0;
  uint16_t local_port = 0;
  uint16_t remote_port = 0;
  uint8_t protocol = 0;
  uint8_t pad[3] = {};
};
static_assert(sizeof(SteerKey) == 16);

// Thread-safety: none; one owner (XdpNetdev) serialises calls.
class XdpProg {
 public:
  // 0 or -errno; on failure *why says what failed (libbpf's own warning included, never printed).
  static int open(int ifindex, XdpMode mode, std::unique_ptr<XdpProg>* out, std::string* why);
  ~XdpProg();
  XdpProg(const XdpProg&) = delete;
  XdpProg& operator=(const XdpProg&) = delete;

  // Points the XSKMAP slot of `queue_id` at an AF_XDP socket. 0 or -errno.
  int set_xsk(uint32_t queue_id, int xsk_fd);

  // Whether SYNs to a listening port arriving on `queue_id` go to its socket (the default) or,
  // as on a queue without one, to the kernel (xmit_no_accept in xmit_xdp.bpf.c). 0 or -errno.
  int set_accepting(uint32_t queue_id, bool on);
  bool accepting(uint32_t queue_id) const;
  // A TCP 4-tuple whose frames go to the kernel even where a listening port's rule matches them
  // (xmit_kernel_flows, as for a connection the kernel accepted itself). 0 or -errno.
  int keep_in_kernel(const FlowKey& flow);

  // netdev.h semantics: -EEXIST, -ENOENT, -ENOSPC, -EINVAL (not TCP/UDP, half a wildcard).
  int steer(const FlowKey& key);
  int unsteer(const FlowKey& key);

  bool native() const { return native_; }  // the mode the kernel reports for the attachment
  int link_fd() const { return link_fd_; }
  int steer_map_fd() const { return steer_fd_; }
  // Every fd behind the attachment: programs, maps, BTF, link (xmit keeps them from the program).
  void for_each_fd(absl::FunctionRef<void(int fd)> f) const;

 private:
  XdpProg() = default;

  bpf_object* obj_ = nullptr;
  bpf_link* link_ = nullptr;  // from bpf_program__attach_xdp(): auto/native mode
  int link_fd_ = -1;          // link_'s fd, or a bpf_link_create() fd in generic mode (owned then)
  bool own_link_fd_ = false;
  int steer_fd_ = -1;         // owned by obj_
  int xsks_fd_ = -1;          // owned by obj_
  int no_accept_fd_ = -1;     // owned by obj_
  int kernel_flows_fd_ = -1;  // owned by obj_
  bool native_ = false;
};

// Converts a netdev.h FlowKey to the map key; -EINVAL if the program could never match it.
int steer_key_from_flow(const FlowKey& flow, SteerKey* key);

}  // namespace xmit::xdp
