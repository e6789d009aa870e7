// stack/ipv4/ip_output.h — the IPv4 output path for datagrams: building the packet train from the
// caller's iovec (uncorked and corked), the IP header, fragmentation and the hand-off to the
// neighbour layer. Kernel counterpart: net/ipv4/ip_output.c (ip_make_skb() & co).
#pragma once

#include <cerrno>
#include <cstdint>

#include "stack/ipv4/inet_sock.h"
#include "stack/ipv4/iov_iter.h"
#include "stack/skb/pool.h"
#include "stack/skb/sk_buff.h"

namespace xmit {

class IpIdentGen;
struct Neighbour;

// What ip_finish_output2() hands to neigh_output() with each packet: the route's answer and the
// skb metadata our sk_buff has no field for. kernel: skb_dst(skb)->dev, rt_nexthop(), skb->priority,
// skb->mark.
struct IpTxInfo {
  int oif = 0;
  be32 nexthop = 0;
  uint32_t priority = 0;
  uint32_t mark = 0;
  bool tx_ip_csum = false;  // the header checksum is 0: the device fills it (set kTxIpCsum)
};

// The neighbour layer. It owns `skb` from the call on (sent or freed, as neigh_output() does):
// skb->data is the IPv4 header, skb_headroom() >= the route's hh_len for the link header. `skb`
// is one packet (skb->next null), or the segments of one UDP GSO packet linked through next (cut by
// ip_finish_output2()), which the device's queue takes or drops as a whole.
// Returns 0 or -errno (the kernel's dev_queue_xmit() result mapped to errno).
class NeighOutput {
 public:
  virtual ~NeighOutput() = default;
  virtual int neigh_output(sk_buff* skb, const IpTxInfo& info) = 0;
  // For a sender that holds the next hop's entry across packets (IpCb::neigh, the UDP send
  // template): the entry of `info`'s next hop when it exists, never created here (nullptr: none,
  // or a neighbour layer that lends none). The pointer stays valid, and stays that next hop's
  // entry, for the layer's life. kernel: __ipv4_neigh_lookup_noref()
  virtual Neighbour* neigh_lookup(const IpTxInfo& info) {
    (void)info;
    return nullptr;
  }
  // neigh_output() through an entry neigh_lookup() returned: the same, without the lookup.
  // `hh_written`: the sender wrote the entry's link header in front of skb->data already
  // (IpCb::hh_written).
  virtual int neigh_output_held(Neighbour* n, sk_buff* skb, bool hh_written) {
    (void)n, (void)hh_written;
    kfree_skb_list(skb);
    return -ENODEV;
  }
};

// Everything the output path needs from the stack around it; all pointers required.
struct IpOutCtx {
  SkbPool* skbs = nullptr;     // every packet's head (alloc_skb())
  BufPool* frags = nullptr;    // payload fragments of the SG path (sk_page_frag())
  IpIdentGen* idents = nullptr;
  NeighOutput* neigh = nullptr;
  IpMib* mib = nullptr;
  const Ipv4Sysctl* sysctl = nullptr;
  uint64_t now_ns = 0;         // time passed in (ident buckets)
  // MSG_ZEROCOPY (the sending socket's): SO_ZEROCOPY is on (kernel: sock_flag(sk, SOCK_ZEROCOPY)),
  // and its option memory can take another object (msg_zerocopy_alloc(): sock_omalloc()).
  bool sock_zerocopy = false;
  bool zc_may_alloc = true;
  // A MSG_ZEROCOPY send on a device that reads user memory (NetdevFeatures::sg_user): the object
  // the payload's kUser fragments hold when the send goes in place. ip_append_data_core() clears
  // its zerocopy_success when it copies instead (kernel: uarg_to_msgzc(uarg)->zerocopy = 0).
  ubuf_info* zc_ubuf = nullptr;
  // The MSG_ZEROCOPY send's charge against RLIMIT_MEMLOCK, the socket's until the send succeeds
  // (kernel: the object's mmp, mm_account_pinned_pages() in msg_zerocopy_realloc()).
  MmPin* zc_mmp = nullptr;
};

// The packet train: ip_make_skb_core() returns the first skb; the others, each one IP fragment's
// payload, hang off skb->next in order (kernel: skb_shinfo(skb)->frag_list). The head's IpCb
// carries what the kernel keeps in the head skb and its dst: the datagram length (the kernel's
// head skb->len, over every skb of the train), priority, mark, ignore_df and the route's answer.
struct IpCb {  // in skb->cb. kernel: IPCB(skb) + skb->len/priority/mark/ignore_df + skb_dst(skb)
  uint32_t datagram_len = 0;
  uint32_t priority = 0;
  uint32_t mark = 0;
  uint32_t mtu = 0;        // ip_skb_dst_mtu(): the path MTU, or the device's for PROBE/INTERFACE/OMIT
  int oif = 0;
  be32 nexthop = 0;
  uint16_t hh_len = 0;     // LL_RESERVED_SPACE(dev)
  bool ignore_df = false;  // kernel: skb->ignore_df
  bool tx_ip_csum = false; // the device fills the IPv4 header checksum
  bool tx_l4_csum = false; // the device finishes UDP checksums (NETIF_F_HW_CSUM): GSO segments stay partial
  bool zcopy = false;      // kernel: skb_zcopy(skb): a MSG_ZEROCOPY object rides it, so appends never coalesce
  // The next hop's neighbour entry, held by the sender (NeighOutput::neigh_lookup()), or nullptr:
  // ip_finish_output2() then looks it up. kernel: the neighbour a dst held (dst->_neighbour, before 3.6)
  Neighbour* neigh = nullptr;
  // The sender wrote `neigh`'s cached link header in front of skb->data (neigh_hh_write()): the
  // neighbour layer only pushes it if the entry takes the hh_cache path. Set only on a packet
  // that goes down whole (the UDP send template's: never fragmented or segmented, whose copies
  // of this IpCb would not have the header in front of them).
  bool hh_written = false;
};
inline IpCb* ipcb(sk_buff* skb) {
  static_assert(sizeof(IpCb) <= sizeof(skb->cb));
  return reinterpret_cast<IpCb*>(skb->cb);
}

// kernel: ip_setup_cork(). 0, -ENETUNREACH (MTU below 68), -EINVAL (no device in the route).
// Keeps ipc.gso_size (UDP_SEGMENT) in the cork for ip_append_data_core() and udp_send_skb().
int ip_setup_cork(const InetSock& inet, InetCork* cork, const IpcmCookie& ipc, const Ipv4Route& rt);

// Appends `length` bytes (the first `transhdrlen` of them are the transport header, left for the
// caller to fill; the rest come from `from`) to `queue`, cut as the kernel cuts them: each skb is
// one future IP fragment (maxfraglen = ((mtu - 20) & ~7) + 20). Errors, all leaving `queue` as
// consistent as the kernel does: -EMSGSIZE (over 0xFFFF - 20 when the socket may fragment, over
// the MTU - 20 when it may not (IP_PMTUDISC_DO/PROBE), or more than MAX_SKB_FRAGS fragments),
// -EFAULT (the iovec ran short), -EAGAIN (the send buffer is full for the first packet:
// sk_wmem_alloc_get() >= sk_sndbuf; the kernel's sock_alloc_send_skb() would block or return
// EAGAIN, the caller does the waiting), -ENOBUFS (MSG_ZEROCOPY with SO_ZEROCOPY: a datagram with
// no object yet (cork->zc_uarg) and the option memory full), -EPIPE (the first packet after shutdown(SHUT_WR):
// sock_alloc_send_skb() checks SEND_SHUTDOWN), -ENOBUFS (a later packet while sk_wmem_alloc is
// over 2 * sk_sndbuf: the kernel's alloc_skb() guard), kNoTxMem (the shared pool is empty).
// Every skb is charged to `inet` as the kernel charges it (stack/ipv4/sk_wmem.h) until freed.
// kernel: __ip_append_data(), net/ipv4/ip_output.c
int ip_append_data_core(const IpOutCtx& ctx, InetSock* inet, SkbQueue* queue, InetCork* cork,
                        PageFrag* pfrag, IovIter* from, int length, int transhdrlen, unsigned flags);

// Not an errno: the TX pool (skbs or payload buffers) is empty. The kernel would have allocated
// memory; here the memory comes back with TX completions, whoever's they are. Distinct from a full
// send buffer so the socket can tell them apart: a blocking send waits for completions, a
// non-blocking one gets EAGAIN (stack/udp/udp_sendmsg.cc).
inline constexpr int kNoTxMem = -4095;

// One linear packet of `length` bytes (the first `transhdrlen` the transport header) behind the
// IPv4 header, in headroom rt.hh_len: the send-buffer checks of sock_alloc_send_pskb(), the skb,
// its charge, ip_summed from the device, and the caller's data copied (summed unless the device
// finishes the sum). The 20 + transhdrlen header bytes are zeroed, or copied from `hdr` when it is
// not null (a prebuilt header: stack/ipv4/udp_tmpl.h). 0 with *out the skb, or an error of
// ip_append_data_core() (-EPIPE, -EAGAIN, kNoTxMem, -EFAULT, a pending socket error); counters are
// the caller's. kernel: the first iteration of __ip_append_data() for a datagram that fits one skb
int ip_alloc_linear(const IpOutCtx& ctx, InetSock* inet, const Ipv4Route& rt, IovIter* from, int length,
                    int transhdrlen, const uint8_t* hdr, sk_buff** out);

// Corking (MSG_MORE, UDP_CORK): sets the cork up on the first call, then appends to the socket's
// write queue. kernel: ip_append_data()
int ip_append_data(const IpOutCtx& ctx, InetSock* inet, const Flowi4& fl4, const Ipv4Route& rt,
                   IovIter* from, int length, int transhdrlen, const IpcmCookie& ipc, unsigned flags);

// The IpCb and the 20-byte IPv4 header (id 0: ip_select_ident_segs() sets it) of a datagram of
// `len` bytes through cork.dst with the cork's TOS, TTL, mark and priority, from fl4's addresses.
// kernel: __ip_make_skb() (the header and skb fields it sets)
void ip_make_hdr(const InetSock& inet, const InetCork& cork, const Flowi4& fl4, const Ipv4Sysctl& sysctl,
                 uint32_t len, IpCb* cb, uint8_t* iphdr);

// Builds the IPv4 header of a finished train and dequeues it: *out is its first skb (or nullptr
// for an empty queue). kernel: __ip_make_skb()
sk_buff* ip_make_skb_core(const IpOutCtx& ctx, InetSock* inet, const Flowi4& fl4, SkbQueue* queue,
                          InetCork* cork);

// The uncorked fast path: one datagram in one call. 0 with *out the train (nullptr for MSG_PROBE),
// or an error of ip_setup_cork()/ip_append_data_core(). *cork is the caller's (the kernel's
// udp_sendmsg() keeps it on its stack) and goes on to udp_send_skb(), which checks the GSO limits
// against it. kernel: ip_make_skb()
int ip_make_skb(const IpOutCtx& ctx, InetSock* inet, const Flowi4& fl4, const Ipv4Route& rt,
                IovIter* from, int length, int transhdrlen, const IpcmCookie& ipc, InetCork* cork,
                unsigned flags, sk_buff** out);

// The same without a cork for the caller: ipc.gso_size must be 0 (-EOPNOTSUPP otherwise, since the
// GSO checks need the cork).
int ip_make_skb(const IpOutCtx& ctx, InetSock* inet, const Flowi4& fl4, const Ipv4Route& rt,
                IovIter* from, int length, int transhdrlen, const IpcmCookie& ipc, unsigned flags,
                sk_buff** out);

// The corked datagram, header built, dequeued; nullptr when nothing is pending.
// kernel: ip_finish_skb(), include/net/ip.h
inline sk_buff* ip_finish_skb(const IpOutCtx& ctx, InetSock* inet) {
  return ip_make_skb_core(ctx, inet, inet->cork.fl4, &inet->sk_write_queue, &inet->cork);
}

// Sends a train: ip_local_out() → ip_finish_output() → ip_fragment() → ip_finish_output2(). Takes
// the train. 0 or -errno (-EMSGSIZE: DF and too large, or a train the fast path cannot send).
// kernel: ip_send_skb()
int ip_send_skb(const IpOutCtx& ctx, sk_buff* skb);

// A connection's segment (skb->data at its transport header, the checksum finished or left to the
// device as CHECKSUM_PARTIAL, gso_size/gso_segs set for a GSO skb) onto IP through `rt`: the
// addresses from the route's flow (rt.saddr, rt.daddr), the rest from the socket (TOS, TTL, DF from
// IP_MTU_DISCOVER, the id from its inet_id counter advanced by the segment count when it is
// connected, else 0 with DF), then ip_local_out(). Takes the skb. 0 or -errno (-ENOBUFS: no
// headroom for the headers). kernel: __ip_queue_xmit() after its route lookup
int ip_queue_xmit(const IpOutCtx& ctx, InetSock* inet, const Ipv4Route& rt, sk_buff* skb);

// kernel: ip_push_pending_frames() (ip_finish_skb() + ip_send_skb())
int ip_push_pending_frames(const IpOutCtx& ctx, InetSock* inet);

// Drops the corked data. kernel: ip_flush_pending_frames()
void ip_flush_pending_frames(InetSock* inet);

// Releases the socket's payload buffer (socket close). kernel: sk_page_frag's put_page on destroy
void inet_sock_destruct(InetSock* inet);

}  // namespace xmit
