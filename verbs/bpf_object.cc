// verbs/bpf_object.cc — see bpf_object.h.
#include "verbs/bpf_object.h"

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace xmit {
namespace {

std::mutex g_libbpf_mu;
char g_libbpf_last[256];  // guarded by g_libbpf_mu

int capture_print(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (level != LIBBPF_WARN) return 0;
  int n = vsnprintf(g_libbpf_last, sizeof g_libbpf_last, fmt, ap);
  for (int i = (n < int(sizeof g_libbpf_last) ? n : int(sizeof g_libbpf_last) - 1) - 1;
       i >= 0 && g_libbpf_last[i] == '\n'; --i)
    g_libbpf_last[i] = '\0';
  return 0;
}

}  // namespace

LibbpfQuiet::LibbpfQuiet() : lock_(g_libbpf_mu) {
  g_libbpf_last[0] = '\0';
  prev_ = libbpf_set_print(capture_print);
}

LibbpfQuiet::~LibbpfQuiet() { libbpf_set_print(prev_); }

std::string LibbpfQuiet::last() const {
  return g_libbpf_last[0] ? std::string(" (") + g_libbpf_last + ")" : "";
}

int bpf_object_load_embedded(const unsigned char* bytes, size_t len, const char* name, const LibbpfQuiet& quiet,
                             bpf_object** obj, std::string* why) {
  LIBBPF_OPTS(bpf_object_open_opts, oopts, .object_name = name);
  *obj = bpf_object__open_mem(bytes, len, &oopts);
  if (*obj == nullptr) {
    const int err = -errno;
    if (why != nullptr) *why = "bpf_object__open_mem" + quiet.last() + ": " + strerror(-err);
    return err;
  }
  if (int err = bpf_object__load(*obj); err < 0) {
    if (why != nullptr) *why = "bpf_object__load" + quiet.last() + ": " + strerror(-err);
    return err;
  }
  return 0;
}

void bpf_object_for_each_fd(const bpf_object* obj, absl::FunctionRef<void(int fd)> f) {
  if (obj == nullptr) return;
  bpf_program* prog;
  bpf_object__for_each_program(prog, obj) if (bpf_program__fd(prog) >= 0) f(bpf_program__fd(prog));
  bpf_map* map;
  bpf_object__for_each_map(map, obj) if (bpf_map__fd(map) >= 0) f(bpf_map__fd(map));
  if (bpf_object__btf_fd(obj) >= 0) f(bpf_object__btf_fd(obj));
}

}  // namespace xmit
