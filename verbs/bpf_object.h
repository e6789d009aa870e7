// verbs/bpf_object.h — what the queues' embedded BPF objects share: libbpf's print hook kept quiet
// while they load, the load itself, and the fds an object holds (the fd table hides them from the
// program). Used by the AF_XDP steering program (xdp/) and the verbs backend's tc programs (ibv/).
#pragma once

#include <bpf/libbpf.h>

#include <cstddef>
#include <mutex>
#include <string>

#include "absl/functional/function_ref.h"

namespace xmit {

// BPF_TCX_INGRESS / BPF_TCX_EGRESS (Linux 6.6); Debian 12's headers predate them.
inline constexpr int kBpfTcxIngress = 46;
inline constexpr int kBpfTcxEgress = 47;

// libbpf prints through one process-wide hook. While one of these lives, calls into libbpf print
// into a buffer (the last warning goes into the caller's error message, last()) under one
// process-wide lock, and the host program's hook is restored at the end.
class LibbpfQuiet {
 public:
  LibbpfQuiet();
  ~LibbpfQuiet();
  LibbpfQuiet(const LibbpfQuiet&) = delete;
  LibbpfQuiet& operator=(const LibbpfQuiet&) = delete;
  // " (the last warning)", or "" when libbpf printed none.
  std::string last() const;

 private:
  std::lock_guard<std::mutex> lock_;
  libbpf_print_fn_t prev_ = nullptr;
};

// Opens and loads the object compiled into `bytes` as `name`. 0, or -errno with *why saying which
// step failed (libbpf's last warning included) and *obj null or to be closed by the caller.
int bpf_object_load_embedded(const unsigned char* bytes, size_t len, const char* name, const LibbpfQuiet& quiet,
                             bpf_object** obj, std::string* why);

// Every fd a loaded object holds: its programs', its maps' and its BTF's.
void bpf_object_for_each_fd(const bpf_object* obj, absl::FunctionRef<void(int fd)> f);

}  // namespace xmit
