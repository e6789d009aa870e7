// stack/sock/ip_options.cc — send-side IPv4 option checks for cmsg IP_RETOPTS.
// kernel: ip_options_get(), __ip_options_compile() (skb == NULL), net/ipv4/ip_options.c
#include "stack/sock/ip_options.h"

#include <errno.h>

#include <cstring>

namespace xmit {
namespace {

// kernel: IPOPT_*, include/uapi/linux/ip.h
constexpr uint8_t kIpoptEnd = 0;
constexpr uint8_t kIpoptNoop = 1;
constexpr uint8_t kIpoptRr = 7;
constexpr uint8_t kIpoptTimestamp = 68;
constexpr uint8_t kIpoptCipso = 134;
constexpr uint8_t kIpoptLsrr = 131;
constexpr uint8_t kIpoptSsrr = 137;
constexpr uint8_t kIpoptRa = 148;
constexpr uint8_t kIpoptTsTsonly = 0;
constexpr uint8_t kIpoptTsTsandaddr = 1;
constexpr uint8_t kIpoptTsPrespec = 3;
constexpr int kIphdrLen = 20;

}  // namespace

int ip_options_compile(IpOptions* opt, bool cap_net_raw) noexcept {
  uint8_t* const base = opt->data;
  uint8_t* optptr = base;
  auto off = [&](const uint8_t* p) { return static_cast<uint8_t>(p - base + kIphdrLen); };
  for (int l = opt->optlen; l > 0;) {
    switch (*optptr) {
      case kIpoptEnd:
        // Everything after END becomes END.
        for (optptr++, l--; l > 0; optptr++, l--) {
          if (*optptr != kIpoptEnd) {
            *optptr = kIpoptEnd;
            opt->is_changed = true;
          }
        }
        return 0;
      case kIpoptNoop:
        l--;
        optptr++;
        continue;
    }
    if (l < 2) return -EINVAL;
    int optlen = optptr[1];
    if (optlen < 2 || optlen > l) return -EINVAL;
    switch (*optptr) {
      case kIpoptSsrr:
      case kIpoptLsrr:
        if (optlen < 3) return -EINVAL;
        if (optptr[2] < 4) return -EINVAL;
        if (opt->srr) return -EINVAL;  // kernel: "NB: cf RFC-1812 5.2.4.1"
        // From user space: pointer 4, at least one address, whole addresses; the first address is
        // the first hop and leaves the option.
        if (optptr[2] != 4 || optlen < 7 || ((optlen - 3) & 3)) return -EINVAL;
        std::memcpy(&opt->faddr, &optptr[3], 4);
        if (optlen > 7) std::memmove(&optptr[3], &optptr[7], static_cast<size_t>(optlen - 7));
        opt->is_strictroute = (optptr[0] == kIpoptSsrr);
        opt->srr = off(optptr);
        break;
      case kIpoptRr:
        if (opt->rr) return -EINVAL;
        if (optlen < 3) return -EINVAL;
        if (optptr[2] < 4) return -EINVAL;
        if (optptr[2] <= optlen) {
          if (optptr[2] + 3 > optlen) return -EINVAL;
          optptr[2] += 4;
          opt->rr_needaddr = true;
        }
        opt->rr = off(optptr);
        break;
      case kIpoptTimestamp:
        if (opt->ts) return -EINVAL;
        if (optlen < 4) return -EINVAL;
        if (optptr[2] < 5) return -EINVAL;
        if (optptr[2] <= optlen) {
          if (optptr[2] + 3 > optlen) return -EINVAL;
          switch (optptr[3] & 0xF) {
            case kIpoptTsTsonly:
              opt->ts_needtime = true;
              optptr[2] += 4;
              break;
            case kIpoptTsTsandaddr:
              if (optptr[2] + 7 > optlen) return -EINVAL;
              opt->ts_needaddr = true;
              opt->ts_needtime = true;
              optptr[2] += 8;
              break;
            case kIpoptTsPrespec:
              if (optptr[2] + 7 > optlen) return -EINVAL;
              // kernel: a local address (inet_addr_type() == RTN_UNICAST) breaks out here.
              opt->ts_needtime = true;
              optptr[2] += 8;
              break;
            default:
              if (!cap_net_raw) return -EINVAL;
              break;
          }
        } else if ((optptr[3] & 0xF) != kIpoptTsPrespec) {
          unsigned overflow = optptr[3] >> 4;
          if (overflow == 15) return -EINVAL;
        }
        opt->ts = off(optptr);
        break;
      case kIpoptRa:
        if (optlen < 4) return -EINVAL;
        if (optptr[2] == 0 && optptr[3] == 0) opt->router_alert = off(optptr);
        break;
      case kIpoptCipso:
        if (!cap_net_raw || opt->cipso) return -EINVAL;
        opt->cipso = off(optptr);
        // kernel: cipso_v4_validate(): opt[1] < 8, or no DOI matching opt[2..5] → error.
        return -EINVAL;
      default:  // IPOPT_SEC, IPOPT_SID and anything unknown
        if (!cap_net_raw) return -EINVAL;
        break;
    }
    l -= optlen;
    optptr += optlen;
  }
  return 0;
}

int ip_options_get(const uint8_t* data, int optlen, bool cap_net_raw, IpOptions* opt) noexcept {
  if (optlen < 0) optlen = 0;
  if (optlen > static_cast<int>(sizeof(opt->data))) optlen = sizeof(opt->data);
  *opt = IpOptions{};
  if (optlen) std::memcpy(opt->data, data, static_cast<size_t>(optlen));
  while (optlen & 3) opt->data[optlen++] = kIpoptEnd;
  opt->optlen = static_cast<uint8_t>(optlen);
  if (optlen && ip_options_compile(opt, cap_net_raw)) {
    *opt = IpOptions{};
    return -EINVAL;
  }
  // kernel: commit 8ff85dbabbbf "ipv4: restrict IPOPT_SSRR and IPOPT_LSRR options" (2026, in
  // stable 6.6+): a source route from user space needs CAP_NET_RAW (CAP_NET_ADMIN does not do).
  // Checked after the whole option block compiled: a malformed block stays -EINVAL.
  if (opt->srr && !cap_net_raw) {
    *opt = IpOptions{};
    return -EPERM;
  }
  return 0;
}

}  // namespace xmit
