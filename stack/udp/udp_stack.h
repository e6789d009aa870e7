// stack/udp/udp_stack.h — one process's UDP/IPv4 stack instance over one Netdev: packet pools, the
// neighbour table, the ident generator, the counters, TX completion reaping and the receive demux.
// Kernel counterparts: the per-netns state the UDP path reaches (udp_table, net->mib, arp_tbl) and
// the device's NAPI poll feeding __udp4_lib_rcv() (net/ipv4/udp.c).
#pragma once

// Threading: ONE mutex (mu()) serialises everything here and in every UdpSock of the instance:
// sends, receives, demux, TX completions, neighbour updates. Simple and correct for a first slice;
// per-socket locks and a per-thread queue come later. The lock is never held across a blocking
// wait (UdpSock releases it around poll()).
// Time is passed in (poll(now)); the owner supplies `now` from its clock.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "stack/dev/netdev.h"
#include "stack/ipv4/inet_sock.h"
#include "stack/ipv4/ip_ident.h"
#include "stack/ipv4/ip_output.h"
#include "stack/neigh/fib.h"
#include "stack/neigh/neighbour.h"
#include "stack/skb/pool.h"

namespace xmit {

class UdpSock;

// The receive-side UDP counters (/proc/net/snmp "Udp:"). kernel: UDP_MIB_*
struct UdpRxMib {
  uint64_t InDatagrams = 0;
  uint64_t NoPorts = 0;       // steered to the queue, but no socket here (closed meanwhile)
  uint64_t InErrors = 0;      // malformed, bad checksum, or receive buffer full
  uint64_t RcvbufErrors = 0;  // the socket's queue was past SO_RCVBUF
  uint64_t InCsumErrors = 0;
};

struct UdpStackOptions {
  uint32_t nr_skbs = 1024;       // TX sk_buffs (held until the device reports completion)
  uint32_t buf_size = 2048;      // head and fragment buffers
  uint64_t ident_seed = 1;       // HashIpIdents key (random in production)
  uint32_t rx_truesize = 4096;   // what one received datagram charges against SO_RCVBUF
  Ipv4Sysctl sysctl;
  uint64_t (*realtime_ns)() = nullptr;  // receive timestamps (SO_TIMESTAMP*); none when null
};

class UdpStack final : private NeighOps, private NeighOutput {
 public:
  // `dev` and `fib` outlive the stack. 0 or -errno (-ENOMEM).
  static int create(Netdev* dev, Fib* fib, const UdpStackOptions& opt, std::unique_ptr<UdpStack>* out);
  ~UdpStack() override;
  UdpStack(const UdpStack&) = delete;
  UdpStack& operator=(const UdpStack&) = delete;

  std::mutex& mu() { return mu_; }

  // Everything below: with mu() held.
  // Reaps TX completions, runs the control plane hook and neighbour timers, and demuxes up to
  // `budget` received frames into the sockets' queues. kernel: net_rx_action() + the TX clean-up
  void poll(uint64_t now, int budget = 64);
  // Also called when something must be refreshed (route/neighbour changes): NetlinkFib::poll_changes.
  void set_control_poll(std::function<void(NeighTable&, uint64_t)> fn) { control_poll_ = std::move(fn); }

  IpOutCtx out_ctx(uint64_t now);
  Netdev& dev() { return *dev_; }
  Fib& fib() { return *fib_; }
  int ifindex() const { return dev_->ifindex(); }
  NeighTable& neigh() { return *neigh_; }
  // The local address steering uses for sockets bound to INADDR_ANY (the interface's address).
  be32 if_addr() const { return if_addr_; }
  void set_if_addr(be32 a) { if_addr_ = a; }
  uint32_t rx_truesize() const { return opt_.rx_truesize; }

  // Demux registration (kernel: udp_lib_get_port() / udp_lib_unhash()); several sockets may share a
  // port (SO_REUSEADDR/SO_REUSEPORT), the first matching one gets the datagram.
  void hash(UdpSock* sk, be16 port);
  void unhash(UdpSock* sk, be16 port);

  IpMib mib;
  UdpMib udp_mib;
  UdpRxMib udp_rx_mib;
  uint64_t tx_in_flight = 0;   // skbs posted, not yet completed
  uint64_t tx_drops = 0;       // device queue full (the kernel's qdisc drop: NET_XMIT_DROP)
  uint64_t tx_pool_empty = 0;  // sends that found the TX pool empty (kNoTxMem): waited or EAGAIN

  // kernel: __udp4_lib_rcv(): one received Ethernet frame. Returns true when a socket keeps the
  // buffer (it then recycles it), false when the caller may recycle it at once.
  bool udp4_rcv_frame(const RxFrame& f);

 private:
  UdpStack() = default;
  // NeighOps
  const uint8_t* dev_addr(int ifindex) override;
  int queue_xmit(int ifindex, sk_buff* skb) override;
  // NeighOutput (the ipv4 layer's view) onto NeighTable (the neigh layer's).
  int neigh_output(sk_buff* skb, const IpTxInfo& info) override;
  void reap_tx();

  std::mutex mu_;
  Netdev* dev_ = nullptr;
  Fib* fib_ = nullptr;
  UdpStackOptions opt_;
  be32 if_addr_ = 0;
  uint64_t now_ = 0;
  std::unique_ptr<BufPool> heads_;
  std::unique_ptr<BufPool> frags_;
  std::unique_ptr<SkbPool> skbs_;
  std::unique_ptr<NeighTable> neigh_;
  std::unique_ptr<HashIpIdents> idents_;
  std::unordered_multimap<be16, UdpSock*> table_;
  std::function<void(NeighTable&, uint64_t)> control_poll_;
};

}  // namespace xmit
