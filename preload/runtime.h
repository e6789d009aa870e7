// preload/runtime.h — the process-wide state chosen at load time: configuration, whether anything
// is accelerated, which backend, and the per-socket decision with its reason.
#pragma once

#include <string>

#include "preload/config.h"

namespace xmit {

struct Runtime {
  Config config;
  bool active = false;   // false: every socket passes through
  int ifindex = 0;
  Backend backend = Backend::kAuto;  // the one chosen (never kAuto when active)
  // kVerbs chosen by XMIT_BACKEND=auto: if the verbs device does not open, the engine opens AF_XDP.
  bool afxdp_fallback = false;
  std::string ibdev;  // kVerbs on the hardware device: the RDMA device and port of the interface
  uint8_t ibport = 0;
};

// Reads the environment, sets up logging, chooses the backend. Called once from the library's
// constructor; until then runtime() is null and everything passes through.
void runtime_init() noexcept;
const Runtime* runtime() noexcept;

// nullptr when a new socket(domain, type, protocol) is served by xmit's stack; otherwise why not,
// in words a user can act on ("UDP is off (XMIT_UDP=off)").
const char* why_not_offloaded(int domain, int type, int protocol) noexcept;

}  // namespace xmit
