// stack/ipv4/inet_sock.h — the per-socket IP state, the per-call cookie and cork, the route result and
// the counters that the IPv4 output path reads and writes. Kernel counterparts: struct inet_sock,
// struct inet_cork, struct ipcm_cookie (include/net/inet_sock.h, include/net/ip.h), struct rtable.
#pragma once

#include <netinet/in.h>  // IP_PMTUDISC_*, IPPROTO_UDP

#include <cstdint>

#include "stack/base/byteorder.h"
#include "stack/base/sk_shutdown.h"
#include "stack/dev/netdev.h"
#include "stack/neigh/fib.h"  // Flowi4
#include "stack/ipv4/skb_queue.h"

namespace xmit {

class BufPool;

inline constexpr uint32_t IP_MAX_MTU = 0xFFFF;  // kernel: include/net/ip.h
inline constexpr uint32_t IPV4_MIN_MTU = 68;    // kernel: inetdev_valid_mtu(), include/linux/inetdevice.h
// kernel: MSG_PROBE, include/linux/socket.h ("do not send, only probe the path"); glibc names
// the same bit MSG_PROXY.
inline constexpr unsigned kMsgProbe = 0x10;

// sysctls the output path reads. kernel: struct netns_ipv4, net/ipv4/sysctl_net_ipv4.c defaults.
struct Ipv4Sysctl {
  uint8_t ip_default_ttl = 64;  // net.ipv4.ip_default_ttl (IPDEFTTL)
};

// The result of the route lookup (another layer's job): everything ip output reads from the
// struct rtable / dst_entry / net_device and the flowi4 the lookup filled.
struct Ipv4Route {
  int oif = 0;               // rt->dst.dev->ifindex
  be32 saddr = 0;            // fl4->saddr after the lookup
  be32 daddr = 0;            // fl4->daddr
  be32 nexthop = 0;          // rt_nexthop(rt, daddr): the gateway, or daddr when on-link
  uint32_t pmtu = 0;         // dst_mtu(&rt->dst); 0: the device MTU
  uint8_t hoplimit = 0;      // dst_metric(RTAX_HOPLIMIT); 0: sysctl ip_default_ttl (ip4_dst_hoplimit())
  bool mtu_locked = false;   // dst_metric_locked(dst, RTAX_MTU) ("mtu lock" route)
  uint16_t hh_len = 16;      // LL_RESERVED_SPACE(dev): 16 for Ethernet
  const NetdevFeatures* dev = nullptr;  // the output device's features and MTU (required)

  uint32_t dev_mtu() const { return dev->mtu; }
  uint32_t dst_mtu() const { return pmtu != 0 ? pmtu : dev->mtu; }
  bool dev_sg() const { return dev->max_segs > 1; }      // NETIF_F_SG
  bool dev_csum() const { return dev->l4_csum; }         // NETIF_F_HW_CSUM | NETIF_F_IP_CSUM
  bool operator==(const Ipv4Route&) const = default;     // the same device, not its features
};


// Per-call control data: the socket's defaults overridden by cmsgs (IP_TTL, IP_TOS, SO_MARK,
// SO_PRIORITY, UDP_SEGMENT). kernel: struct ipcm_cookie + struct sockcm_cookie, include/net/ip.h
struct IpcmCookie {
  be32 addr = 0;          // source address (IP_PKTINFO), ipc.addr
  int oif = 0;
  int16_t tos = -1;       // -1: the socket's tos
  uint8_t ttl = 0;        // 0: ip_select_ttl()
  uint16_t gso_size = 0;  // UDP_SEGMENT (socket option or cmsg): segment payload size, 0: no GSO
  uint32_t mark = 0;      // sockc.mark
  uint32_t priority = 0;  // sockc.priority
  uint8_t tx_flags = 0;   // SKBTX_* timestamp requests (carried, not acted on)
  bool operator==(const IpcmCookie&) const = default;
};


// kernel: IPCORK_OPT et al. (only the flags this path uses)
inline constexpr uint32_t IPCORK_ALLFRAG = 2;

// kernel: struct inet_cork — what ip_setup_cork() fixes for the datagram being built.
struct InetCork {
  uint32_t flags = 0;
  be32 addr = 0;
  uint32_t fragsize = 0;  // the MTU the datagram is cut for
  uint32_t length = 0;    // bytes appended so far (transport header + payload)
  uint16_t gso_size = 0;  // ipc.gso_size: udp_send_skb() segments the datagram when non-zero
  int16_t tos = -1;
  uint8_t ttl = 0;
  uint8_t tx_flags = 0;
  uint32_t mark = 0;
  uint32_t priority = 0;
  Ipv4Route dst;          // cork->dst (a copy: the kernel takes a reference)
  Flowi4 fl4;             // inet->cork.fl.u.ip4 (corked sends keep it for the push)
  bool has_dst = false;
  bool zc_uarg = false;   // skb_zcopy(tail): a MSG_ZEROCOPY send's object rides the datagram
};

// The payload buffer the SG path copies into: the rest of a pool buffer, shared by consecutive
// fragments (each holds its own reference). kernel: struct page_frag + sk_page_frag_refill()
struct PageFrag {
  BufPool* pool = nullptr;
  uint8_t* buf = nullptr;  // one reference held while not null
  uint32_t offset = 0;
  uint32_t size = 0;
};

// kernel: struct inet_sock (the output fields) and the struct sock fields it reads.
struct InetSock {
  be32 inet_saddr = 0;
  be32 inet_daddr = 0;   // non-zero once connected: ip_select_ident_segs() then uses inet_id
  be16 inet_sport = 0;
  be16 inet_dport = 0;
  int16_t uc_ttl = -1;   // IP_TTL; -1: the route's hoplimit or the sysctl
  uint8_t tos = 0;       // IP_TOS
  uint8_t pmtudisc = IP_PMTUDISC_WANT;  // IP_MTU_DISCOVER (inet_create(): WANT unless ip_no_pmtu_disc)
  uint16_t inet_id = 0;  // ip4_datagram_connect() seeds it with get_random_u16()
  bool hdrincl = false;  // IP_HDRINCL (raw sockets only; always false here)
  bool recverr = false;  // IP_RECVERR
  uint8_t sk_protocol = IPPROTO_UDP;
  bool sk_no_check_tx = false;  // SO_NO_CHECK
  uint32_t sk_mark = 0;         // SO_MARK
  uint32_t sk_priority = 0;     // SO_PRIORITY
  uint8_t sk_shutdown = 0;      // shutdown(): RCV_SHUTDOWN | SEND_SHUTDOWN
  int sk_err = 0;               // pending socket error (positive errno); sock_error() consumes it

  // The send buffer (stack/ipv4/sk_wmem.h). kernel: sk->sk_sndbuf, sk->sk_wmem_alloc, sk_destruct
  uint32_t sk_sndbuf = 212992;   // SO_SNDBUF as the kernel reports it (net.core.wmem_default)
  uint32_t sk_wmem_alloc = 1;    // 1 while open + the truesize of every skb charged and not freed
  uint64_t sk_wmem_charged = 0;  // running total of what was charged (not the kernel's): minus
                                 // sk_wmem_alloc_get(), what was released (MSG_ZEROCOPY completions)
  void (*sk_destruct)(void* arg) = nullptr;  // run by the last sock_wfree() after sk_free()
  void* sk_destruct_arg = nullptr;

  InetCork cork;             // inet->cork.base, for ip_append_data()
  SkbQueue sk_write_queue;   // the corked packet train
  PageFrag pfrag;            // sk_page_frag(sk)
};

// kernel: ipcm_init_sk(), include/net/ip.h + sockcm_init(), include/net/sock.h
inline void ipcm_init_sk(IpcmCookie* ipc, const InetSock& inet) {
  *ipc = IpcmCookie{.addr = inet.inet_saddr,
                    .tos = inet.tos,
                    .mark = inet.sk_mark,
                    .priority = inet.sk_priority};
}

// kernel: ip_sk_use_pmtu(), include/net/ip.h — PROBE, INTERFACE and OMIT use the device MTU.
inline bool ip_sk_use_pmtu(const InetSock& inet) { return inet.pmtudisc < IP_PMTUDISC_PROBE; }

// kernel: ip_sk_ignore_df(), include/net/ip.h — "may fragment locally even with DF set".
inline bool ip_sk_ignore_df(const InetSock& inet) {
  return inet.pmtudisc < IP_PMTUDISC_DO || inet.pmtudisc == IP_PMTUDISC_OMIT;
}

// kernel: ip_dont_fragment(), include/net/ip.h — DO always; WANT unless the route locks its MTU.
inline bool ip_dont_fragment(const InetSock& inet, const Ipv4Route& rt) {
  return inet.pmtudisc == IP_PMTUDISC_DO || (inet.pmtudisc == IP_PMTUDISC_WANT && !rt.mtu_locked);
}

// kernel: ip_select_ttl(), net/ipv4/ip_output.c + ip4_dst_hoplimit(), include/net/route.h
inline uint8_t ip_select_ttl(const InetSock& inet, const Ipv4Route& rt, const Ipv4Sysctl& sysctl) {
  if (inet.uc_ttl >= 0) return static_cast<uint8_t>(inet.uc_ttl);
  return rt.hoplimit != 0 ? rt.hoplimit : sysctl.ip_default_ttl;
}

// The IP SNMP counters this path touches (/proc/net/snmp "Ip:"). kernel: IPSTATS_MIB_*
struct IpMib {
  uint64_t OutRequests = 0;   // datagrams handed to ip_local_out()
  uint64_t OutDiscards = 0;   // __ip_append_data() / ip_send_skb() errors
  uint64_t OutTransmits = 0;  // packets handed to the neighbour layer (IPSTATS_MIB_OUTPKTS)
  uint64_t FragOKs = 0;
  uint64_t FragFails = 0;
  uint64_t FragCreates = 0;
};

// The UDP counters udp_send_skb() touches ("Udp:"). kernel: UDP_MIB_*
struct UdpMib {
  uint64_t OutDatagrams = 0;
  uint64_t SndbufErrors = 0;
};

}  // namespace xmit
