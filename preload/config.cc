// preload/config.cc — parses XMIT_IFACE, XMIT_BACKEND, XMIT_VERBS_DEVICE, XMIT_UDP, XMIT_TCP,
// XMIT_TCP_AUTOCORK, XMIT_LOG, XMIT_PCAP, XMIT_TX_BATCH, XMIT_VERBS_MR_ENTRIES, XMIT_WORKERS,
// XMIT_BUSY_POLL.
#include "preload/config.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace xmit {
namespace {

bool parse_on_off(const char* v, bool* out) {
  if (strcmp(v, "on") == 0 || strcmp(v, "1") == 0) return *out = true, true;
  if (strcmp(v, "off") == 0 || strcmp(v, "0") == 0) return *out = false, true;
  return false;
}

bool parse_level(const std::string& v, LogLevel* out) {
  static constexpr LogLevel kAll[] = {LogLevel::kError, LogLevel::kWarn, LogLevel::kNotice,
                                      LogLevel::kInfo, LogLevel::kDebug};
  for (LogLevel l : kAll) {
    if (v == log_level_name(l)) return *out = l, true;
  }
  return false;
}

// A decimal number from lo to hi, nothing else (no sign, no blanks, no suffix).
bool parse_number(const char* v, unsigned lo, unsigned hi, unsigned* out) {
  if (*v < '0' || *v > '9') return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long n = strtoul(v, &end, 10);
  if (*end != '\0' || errno != 0 || n < lo || n > hi) return false;
  *out = static_cast<unsigned>(n);
  return true;
}

std::string bad(const char* var, const char* value, const char* accepted) {
  return std::string(var) + "=" + value + " is not valid (accepted: " + accepted + ")";
}

}  // namespace

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::kAfXdp: return "afxdp";
    case Backend::kVerbs: return "verbs";
    case Backend::kAuto: return "auto";
  }
  return "?";
}

const char* log_level_name(LogLevel l) {
  switch (l) {
    case LogLevel::kError: return "error";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kNotice: return "notice";
    case LogLevel::kInfo: return "info";
    case LogLevel::kDebug: return "debug";
  }
  return "?";
}

Config parse_config(absl::FunctionRef<const char*(const char*)> getenv_fn) {
  Config c;
  if (const char* v = getenv_fn("XMIT_IFACE"); v != nullptr && *v != '\0') {
    // The kernel's dev_valid_name(): at most IFNAMSIZ-1 bytes, not "." or "..", no '/', ':' or space.
    bool ok = strlen(v) < IFNAMSIZ && strcmp(v, ".") != 0 && strcmp(v, "..") != 0 &&
              strpbrk(v, "/: \t\n") == nullptr;
    if (ok) {
      c.iface = v;
    } else {
      c.errors.push_back(bad("XMIT_IFACE", v, "an interface name of 1 to 15 bytes without '/', ':' or spaces"));
    }
  }
  if (const char* v = getenv_fn("XMIT_BACKEND"); v != nullptr) {
    if (strcmp(v, "auto") == 0) c.backend = Backend::kAuto;
    else if (strcmp(v, "afxdp") == 0) c.backend = Backend::kAfXdp;
    else if (strcmp(v, "verbs") == 0) c.backend = Backend::kVerbs;
    else c.errors.push_back(bad("XMIT_BACKEND", v, "afxdp, verbs, auto"));
  }
  if (const char* v = getenv_fn("XMIT_VERBS_DEVICE"); v != nullptr) {
    if (strcmp(v, "hw") == 0) c.verbs_device = VerbsDevice::kHw;
    else if (strcmp(v, "software") == 0) c.verbs_device = VerbsDevice::kSoftware;
    else c.errors.push_back(bad("XMIT_VERBS_DEVICE", v, "hw, software"));
  }
  if (const char* v = getenv_fn("XMIT_VERBS_SW_OFFLOADS"); v != nullptr && !parse_on_off(v, &c.verbs_sw_offloads)) {
    c.errors.push_back(bad("XMIT_VERBS_SW_OFFLOADS", v, "on, off"));
  }
  if (const char* v = getenv_fn("XMIT_VERBS_RX_INJECT"); v != nullptr) {
    if (strcmp(v, "tcx") == 0) c.verbs_rx_inject_raw = false;
    else if (strcmp(v, "raw") == 0) c.verbs_rx_inject_raw = true;
    else c.errors.push_back(bad("XMIT_VERBS_RX_INJECT", v, "tcx, raw"));
  }
  if (const char* v = getenv_fn("XMIT_UDP"); v != nullptr && !parse_on_off(v, &c.udp)) {
    c.errors.push_back(bad("XMIT_UDP", v, "on, off"));
  }
  if (const char* v = getenv_fn("XMIT_TCP"); v != nullptr && !parse_on_off(v, &c.tcp)) {
    c.errors.push_back(bad("XMIT_TCP", v, "on, off"));
  }
  if (const char* v = getenv_fn("XMIT_TCP_AUTOCORK"); v != nullptr && !parse_on_off(v, &c.tcp_autocork)) {
    c.errors.push_back(bad("XMIT_TCP_AUTOCORK", v, "on, off"));
  }
  if (const char* v = getenv_fn("XMIT_TCP_KERNEL_PORTS"); v != nullptr && !parse_on_off(v, &c.tcp_kernel_ports)) {
    c.errors.push_back(bad("XMIT_TCP_KERNEL_PORTS", v, "on, off"));
  }
  if (const char* v = getenv_fn("XMIT_LOG"); v != nullptr) {
    std::string s(v);
    size_t colon = s.find(':');
    std::string level = s.substr(0, colon);
    if (!parse_level(level, &c.log_level) || (colon != std::string::npos && colon + 1 == s.size())) {
      c.errors.push_back(bad("XMIT_LOG", v, "error, warn, notice, info, debug, optionally :FILE"));
    } else if (colon != std::string::npos) {
      c.log_file = s.substr(colon + 1);
    }
  }
  if (const char* v = getenv_fn("XMIT_PCAP"); v != nullptr) {
    if (*v == '\0') c.errors.push_back(bad("XMIT_PCAP", v, "a file path"));
    else c.pcap_file = v;
  }
  if (const char* v = getenv_fn("XMIT_TX_BATCH"); v != nullptr && !parse_number(v, 1, 1024, &c.tx_batch)) {
    c.errors.push_back(bad("XMIT_TX_BATCH", v, "a number of frames from 1 to 1024"));
  }
  if (const char* v = getenv_fn("XMIT_VERBS_MR_ENTRIES"); v != nullptr &&
      !parse_number(v, 0, 4096, &c.verbs_mr_entries)) {
    c.errors.push_back(bad("XMIT_VERBS_MR_ENTRIES", v, "a number of registrations from 0 to 4096"));
  }
  if (const char* v = getenv_fn("XMIT_WORKERS"); v != nullptr && !parse_number(v, 0, 64, &c.workers)) {
    c.errors.push_back(bad("XMIT_WORKERS", v, "a number of worker processes from 0 to 64"));
  }
  if (const char* v = getenv_fn("XMIT_BUSY_POLL"); v != nullptr) {
    unsigned us = 0;
    if (parse_number(v, 0, 1000000, &us)) c.busy_poll = static_cast<int>(us);
    else c.errors.push_back(bad("XMIT_BUSY_POLL", v, "a busy-poll time from 0 to 1000000 µs"));
  }
  return c;
}

}  // namespace xmit
