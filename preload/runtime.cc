// preload/runtime.cc — load-time setup: configuration, log destination, backend choice.
#include "preload/runtime.h"

#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "preload/libc.h"
#include "preload/log.h"
#include "preload/own_fds.h"
#include "verbs/ibv/ibv_ops.h"

namespace xmit {
namespace {

constinit std::atomic<const Runtime*> g_runtime{nullptr};

std::string expand_pid(const std::string& path) {
  std::string out;
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '%' && i + 1 < path.size() && path[i + 1] == 'p') {
      out += std::to_string(getpid());
      ++i;
    } else {
      out += path[i];
    }
  }
  return out;
}

std::string interface_list() {
  std::string names;
  if (struct if_nameindex* all = if_nameindex()) {
    for (auto* i = all; i->if_index != 0; ++i) names += (names.empty() ? "" : ", ") + std::string(i->if_name);
    if_freenameindex(all);
  }
  return names.empty() ? "none" : names;
}

// The backend (kernel's nothing: this is xmit's own policy). XMIT_BACKEND=afxdp and verbs are
// taken as asked, verbs only where the interface has an RDMA device (or with the software device);
// auto takes verbs where the interface has an RDMA device (the engine falls back to AF_XDP if it
// does not open: not raw-packet capable, no CAP_NET_RAW), else AF_XDP. kAuto back: verbs was asked
// for and cannot be had (*why is the error line).
Backend choose_backend(Runtime& rt, std::string* why) {
  const Config& c = rt.config;
  if (c.backend == Backend::kAfXdp) {
    *why = "XMIT_BACKEND=afxdp";
    return Backend::kAfXdp;
  }
  if (c.verbs_device == VerbsDevice::kSoftware) {
    *why = std::string(c.backend == Backend::kAuto ? "auto" : "XMIT_BACKEND=verbs") +
           ": the software verbs device over " + c.iface + " (XMIT_VERBS_DEVICE=software)";
    rt.afxdp_fallback = c.backend == Backend::kAuto;
    return Backend::kVerbs;
  }
  std::string step;
  if (ibv::sysfs_netdev_to_ibdev("/sys", c.iface, &rt.ibdev, &rt.ibport, &step) == 0) {
    *why = std::string(c.backend == Backend::kAuto ? "auto" : "XMIT_BACKEND=verbs") + ": RDMA device " +
           rt.ibdev + " port " + std::to_string(rt.ibport) + " carries " + c.iface;
    rt.afxdp_fallback = c.backend == Backend::kAuto;
    if (rt.afxdp_fallback) *why += "; AF_XDP if it cannot open";
    return Backend::kVerbs;
  }
  if (c.backend == Backend::kVerbs) {
    *why = "XMIT_BACKEND=verbs, but " + step +
           "; use the interface of an RDMA NIC, XMIT_BACKEND=afxdp or auto, or XMIT_VERBS_DEVICE=software";
    return Backend::kAuto;
  }
  *why = "auto: " + step;
  return Backend::kAfXdp;
}

void setup(Runtime& rt) {
  rt.config = parse_config([](const char* name) { return static_cast<const char*>(getenv(name)); });
  Config& c = rt.config;
  if (!c.log_file.empty() && c.errors.empty()) {
    std::string path = expand_pid(c.log_file);
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
      c.errors.push_back("XMIT_LOG=" + std::string(getenv("XMIT_LOG")) + ": cannot open " + path +
                         ": " + strerror(errno) + " (accepted: LEVEL or LEVEL:FILE with a writable FILE)");
    } else {
      log_setup(c.log_level, fd);
      g_own_fds.add(fd);  // a daemon closing every fd above 2 keeps xmit's log
    }
  } else if (c.errors.empty()) {
    log_setup(c.log_level, 2);
  }
  if (!c.errors.empty()) {
    for (const std::string& e : c.errors) {
      logf(LogLevel::kError, "%s; every socket passes through to the kernel", e.c_str());
    }
    return;
  }
  if (c.iface.empty()) {
    logf(LogLevel::kNotice, "XMIT_IFACE is unset: every socket passes through to the kernel");
    return;
  }
  rt.ifindex = static_cast<int>(if_nametoindex(c.iface.c_str()));
  if (rt.ifindex == 0) {
    logf(LogLevel::kError,
         "XMIT_IFACE=%s: no such interface in this network namespace (accepted: %s); every socket "
         "passes through to the kernel",
         c.iface.c_str(), interface_list().c_str());
    return;
  }
  std::string why;
  rt.backend = choose_backend(rt, &why);
  if (rt.backend == Backend::kAuto) {
    logf(LogLevel::kError, "%s; every socket passes through to the kernel", why.c_str());
    return;
  }
  rt.active = true;
  logf(LogLevel::kNotice, "accelerating %s (ifindex %d) through %s (%s); UDP %s, TCP %s",
       c.iface.c_str(), rt.ifindex, backend_name(rt.backend), why.c_str(), c.udp ? "on" : "off",
       c.tcp ? "on" : "off");
}

}  // namespace

void runtime_init() noexcept {
  if (g_runtime.load(std::memory_order_acquire) != nullptr) return;
  libc();
  try {
    auto* rt = new Runtime;
    setup(*rt);
    g_runtime.store(rt, std::memory_order_release);  // deliberately never freed: used until exit
  } catch (...) {
    logf(LogLevel::kError, "out of memory at start-up; every socket passes through to the kernel");
  }
}

const Runtime* runtime() noexcept { return g_runtime.load(std::memory_order_acquire); }

const char* why_not_offloaded(int domain, int type, int protocol) noexcept {
  const Runtime* rt = runtime();
  if (rt == nullptr) return "xmit is not initialised yet (a call from an earlier constructor)";
  if (!rt->config.errors.empty()) return "a bad XMIT_* value turned xmit off";
  if (rt->config.iface.empty()) return "XMIT_IFACE is unset";
  if (!rt->active) return "XMIT_IFACE names no usable interface";
  switch (domain) {
    case AF_INET: break;
    case AF_INET6: return "address family AF_INET6 (xmit serves IPv4)";
    case AF_UNIX: return "address family AF_UNIX (local)";
    case AF_NETLINK: return "address family AF_NETLINK";
    case AF_PACKET: return "address family AF_PACKET";
    default: return "address family not served by xmit";
  }
  int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (rt->config.workers > 0 && (base == SOCK_DGRAM || base == SOCK_STREAM))
    return "XMIT_WORKERS is set: only the listeners a pre-fork worker inherits are xmit's (preload/workers.h)";
  if (base == SOCK_DGRAM && (protocol == 0 || protocol == IPPROTO_UDP)) {
    if (!rt->config.udp) return "UDP is off (XMIT_UDP=off)";
    return nullptr;  // served (when the stack opens: see preload/engine.h)
  }
  if (base == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP)) {
    if (!rt->config.tcp) return "TCP is off (XMIT_TCP=off)";
    return nullptr;
  }
  return "socket type or protocol not served by xmit (only UDP and TCP are)";
}

// Runs before the program's own constructors where the loader allows; calls that arrive earlier
// pass through (libc() resolves itself on first use).
__attribute__((constructor(101))) static void xmit_constructor() { runtime_init(); }

}  // namespace xmit
