// stack/sock/ip_options.h — IPv4 options given per datagram (cmsg IP_RETOPTS), checked the way the
// kernel checks options from user space (no skb). Belongs in stack/ipv4 once that layer exists.
// kernel: ip_options_get(), __ip_options_compile() with skb == NULL, net/ipv4/ip_options.c
#pragma once

#include <cstdint>

namespace xmit {

// kernel: struct ip_options, include/net/inet_sock.h. Offsets (srr, rr, ts, ...) count from the
// start of the IP header, as the kernel's do (20 + offset into the option bytes).
struct IpOptions {
  uint32_t faddr = 0;  // __be32: the first hop of a source route (taken out of the option)
  uint8_t optlen = 0;  // bytes in __data, a multiple of 4, at most 40
  uint8_t srr = 0;
  uint8_t rr = 0;
  uint8_t ts = 0;
  bool is_strictroute = false;
  bool is_changed = false;
  bool rr_needaddr = false;
  bool ts_needtime = false;
  bool ts_needaddr = false;
  uint8_t router_alert = 0;
  uint8_t cipso = 0;
  // kernel: __data. Left uninitialised by default construction (every send's Ipcm holds one, and
  // zeroing 40 bytes per datagram showed in the send path's profile); ip_options_get() writes the
  // whole struct before anything reads it, and IpOptions{} still zeroes it.
  uint8_t data[40];
};

// kernel: ip_options_get(net, &opt, data, optlen): copy optlen (<= 40) bytes, pad with IPOPT_END
// to a multiple of 4, and compile them; a bad option: -EINVAL. optlen 0 gives an empty option
// set (still "present": ipc.opt != NULL). A valid block with a source route (LSRR/SSRR) and no
// CAP_NET_RAW: -EPERM (Linux 2026 stable change; older kernels accept it).
int ip_options_get(const uint8_t* data, int optlen, bool cap_net_raw, IpOptions* opt) noexcept;

// kernel: __ip_options_compile(net, opt, NULL, NULL): the send-side rules. Options the kernel lets
// only CAP_NET_RAW set (SEC, SID, unknown types, timestamp flag values other than 0/1/3): -EINVAL
// without it. CIPSO with CAP_NET_RAW goes to cipso_v4_validate(), which fails unless a CIPSO DOI
// is configured (netlabelctl); xmit assumes none is, so CIPSO is always -EINVAL.
// Not reproduced: for a pre-specified timestamp (flag 3) naming a local address the kernel
// leaves the pointer alone (inet_addr_type() == RTN_UNICAST); here the pointer always advances.
// That changes the bytes sent, never the errno.
int ip_options_compile(IpOptions* opt, bool cap_net_raw) noexcept;

}  // namespace xmit
