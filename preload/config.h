// preload/config.h — the XMIT_* environment variables. Parsing is pure (the lookup function is
// passed in) so tests can feed any environment; every bad value yields one line naming the
// variable and the values it accepts, and makes the whole process pass through to the kernel.
#pragma once

#include <net/if.h>

#include <string>
#include <vector>

#include "absl/functional/function_ref.h"

namespace xmit {

enum class Backend { kAuto, kAfXdp, kVerbs };
enum class VerbsDevice { kHw, kSoftware };
enum class LogLevel { kError = 0, kWarn, kNotice, kInfo, kDebug };

struct Config {
  std::string iface;                   // XMIT_IFACE; empty: nothing is accelerated
  Backend backend = Backend::kAuto;    // XMIT_BACKEND=afxdp|verbs|auto
  VerbsDevice verbs_device = VerbsDevice::kHw;  // XMIT_VERBS_DEVICE=hw|software (verbs/ibv/sw)
  bool verbs_sw_offloads = true;       // XMIT_VERBS_SW_OFFLOADS=on|off: the software device's checksum offload and TSO
  bool verbs_rx_inject_raw = false;    // XMIT_VERBS_RX_INJECT=tcx|raw: how first fragments go back to the kernel
  bool udp = true;                     // XMIT_UDP=on|off
  bool tcp = true;                     // XMIT_TCP=on|off
  bool tcp_autocork = true;            // XMIT_TCP_AUTOCORK=on|off: off overrides net.ipv4.tcp_autocorking
  bool tcp_kernel_ports = true;        // XMIT_TCP_KERNEL_PORTS=on|off: connect()'s port and timestamp offset from the kernel
  LogLevel log_level = LogLevel::kNotice;  // XMIT_LOG=LEVEL[:FILE]
  std::string log_file;                // "" → stderr; "%p" in the name becomes the pid
  std::string pcap_file;               // XMIT_PCAP=FILE: every frame the queues carry
  unsigned tx_batch = 1;               // XMIT_TX_BATCH=1..1024: frames per TX doorbell (XdpOptions::tx_kick_batch)
  unsigned verbs_mr_entries = 64;      // XMIT_VERBS_MR_ENTRIES=0..4096: IbvOptions::mr_cache_entries
  int busy_poll = -1;                  // XMIT_BUSY_POLL=0..1000000 µs: net.core.busy_read/busy_poll for this process; -1: the sysctls
  unsigned workers = 0;                // XMIT_WORKERS=0..64: pre-fork listeners served by N workers (preload/workers.h)
  std::vector<std::string> errors;     // one line per bad value; non-empty → pass everything through
};

Config parse_config(absl::FunctionRef<const char*(const char*)> getenv_fn);

const char* backend_name(Backend b);
const char* log_level_name(LogLevel l);

}  // namespace xmit
