// stack/dev/netdev.h — the device interface: raw Ethernet TX/RX queues that both an AF_XDP socket
// and an ibverbs raw-packet QP fit. Kernel counterparts: struct net_device, ndo_start_xmit(),
// netdev_features_t, NAPI poll; flow steering is what ethtool ntuple / ibv_create_flow do.
//
// Error convention: 0 or a count on success, -errno on failure, as in the kernel.
// Threading: a Netdev is one queue pair used by one thread at a time; callers serialise.
#pragma once

#include <cstdint>

#include "absl/functional/function_ref.h"
#include "absl/types/span.h"

namespace xmit {

// What the device does in hardware. Software fills in whatever is false here.
// kernel: netdev_features_t bits NETIF_F_IP_CSUM, NETIF_F_HW_CSUM, NETIF_F_SG, NETIF_F_TSO.
struct NetdevFeatures {
  bool ip_csum = false;     // fills the IPv4 header checksum (kTxIpCsum)
  bool l4_csum = false;     // finishes a TCP/UDP checksum from csum_start/csum_offset (kTxL4Csum)
  bool tso = false;         // splits one large TCP frame into gso_size segments (kTxTso)
  // Reads frame segments in the program's own memory (FrameSeg::user) in place, so MSG_ZEROCOPY
  // sends reference the caller's bytes instead of copying them: the kernel's NETIF_F_SG as
  // __ip_append_data() and tcp_sendmsg_locked() test it for their zerocopy paths. verbs: true
  // (user pages are registered, verbs/ibv/mr_cache.h); AF_XDP: false (a frame must be in the UMEM).
  bool sg_user = false;
  uint32_t tso_max_size = 0;
  uint16_t max_segs = 1;    // scatter-gather entries one frame may have
  uint32_t mtu = 1500;      // L3 MTU, as `ip link` shows it
  uint32_t max_frame = 1514;  // largest frame (L2 header included) the queue carries without TSO
};

// One piece of a frame, in memory the device can read (pool, user pages, file pages).
struct FrameSeg {
  const uint8_t* data = nullptr;
  uint32_t len = 0;
  // The program's memory (a MSG_ZEROCOPY send's bytes, skb FragKind::kUser), not the stack's: a
  // device with sg_user makes it readable in place (registration) until the frame completes.
  bool user = false;
};

enum TxFlags : uint32_t {
  kTxIpCsum = 1u << 0,   // device computes the IPv4 header checksum
  kTxL4Csum = 1u << 1,   // CHECKSUM_PARTIAL: device folds the sum from csum_start, stores at +csum_offset
  kTxTso = 1u << 2,      // segment into gso_size payloads
};

// A frame handed to the device. The memory behind segs stays valid until the device reports
// `cookie` through poll_tx(); the segs array itself only needs to live through xmit().
struct TxFrame {
  absl::Span<const FrameSeg> segs;
  uint32_t flags = 0;
  uint16_t csum_start = 0;   // kernel: skb->csum_start, from the start of the frame
  uint16_t csum_offset = 0;  // kernel: skb->csum_offset, from csum_start
  uint16_t gso_size = 0;     // kernel: skb_shinfo(skb)->gso_size
  uint64_t cookie = 0;       // returned by poll_tx() once the device no longer reads the memory
  // A frame with user segments: the device sets *zerocopy_success to false when it copied them
  // instead of reading them in place (no registration possible), so the MSG_ZEROCOPY
  // notification says COPIED. kernel: skb_copy_ubufs() -> skb_zcopy_clear(skb, false)
  bool* zerocopy_success = nullptr;
};

// A received frame. `data` is valid during the poll_rx() callback; a callback that returns true
// keeps the buffer and must hand `buf_id` back through rx_recycle() when done with it.
struct RxFrame {
  const uint8_t* data = nullptr;
  uint32_t len = 0;
  uint64_t buf_id = 0;
};

// "Deliver this flow to my queue and not to the kernel." Addresses and ports in network byte
// order; a zero remote_addr/remote_port is a wildcard (a listening or unconnected local port).
struct FlowKey {
  uint8_t protocol = 0;      // IPPROTO_UDP, IPPROTO_TCP
  uint32_t local_addr = 0;
  uint16_t local_port = 0;
  uint32_t remote_addr = 0;
  uint16_t remote_port = 0;
  bool operator==(const FlowKey&) const = default;
};

class Netdev {
 public:
  virtual ~Netdev() = default;

  // Fixed for the device's life: a stack reads them once, when it is created (UdpStack).
  virtual const NetdevFeatures& features() const = 0;
  virtual const uint8_t* mac() const = 0;  // 6 bytes
  virtual int ifindex() const = 0;

  // Posts frames in order; returns how many were taken (0 when the queue is full), or -errno for a
  // frame the device can never send (-EMSGSIZE too large, -EINVAL too many segs / bad flags).
  // Frames not taken stay the caller's.
  virtual int xmit(absl::Span<const TxFrame> frames) = 0;

  // Reaps TX completions: calls `done(cookie)` for each frame whose memory is free again.
  // Returns how many were reaped.
  virtual int poll_tx(absl::FunctionRef<void(uint64_t cookie)> done) = 0;

  // Delivers up to `budget` received frames. Returns how many were delivered.
  virtual int poll_rx(int budget, absl::FunctionRef<bool(const RxFrame&)> deliver) = 0;
  virtual void rx_recycle(uint64_t buf_id) = 0;

  // Flow steering. 0 or -errno (-EEXIST already steered, -ENOENT not steered, -ENOSPC table full).
  virtual int steer(const FlowKey& key) = 0;
  virtual int unsteer(const FlowKey& key) = 0;
  // A flow the kernel owns from now on (a connection moved into a kernel socket) that a wider rule
  // (its listening port's) would still steer here: its frames go to the kernel. 0 or -errno
  // (-EOPNOTSUPP: the device cannot tell it apart; it then keeps getting them).
  virtual int steer_to_kernel(const FlowKey& key) { (void)key; return -EOPNOTSUPP; }

  // An fd that becomes readable when frames or completions wait (for poll/epoll), or -1.
  virtual int wait_fd() const { return -1; }
  // Whether a TX completion makes wait_fd() readable (the verbs send CQ on the completion channel:
  // true). false (AF_XDP: xsk_poll() reports the RX ring and TX ring space, never the completion
  // ring): a completion is seen only by the next poll_tx(), so a stack with something waiting for
  // one (autocorked data, frames in its backlog) must look for it itself at a short deadline
  // (TcpStack::next_timer_ns()). kernel: a NIC's TX completion interrupt.
  virtual bool tx_completion_wakes() const { return false; }

  // A device may hold frames xmit() took without telling the hardware yet (a doorbell batched over
  // several xmit() calls, XdpOptions::tx_kick_batch): flush_tx() rings it now. The stack calls it
  // before its caller may wait (a blocking send out of buffer space, any receive, exit) and from
  // the engine's flusher thread, which bounds how long a frame can wait. Default: nothing held.
  virtual void flush_tx() {}

  // More frames follow (kernel: netdev_xmit_more(), skb->xmit_more): while on, xmit() may leave the
  // doorbell for a whole batch of frames instead of ringing it per call; the caller turns it off
  // and calls flush_tx() at the end of its burst, and before it lets go of the stack's lock (another
  // thread's frames must not be held for it). Default: every xmit() rings as it always does.
  virtual void set_xmit_more(bool on) { (void)on; }
  virtual bool xmit_more() const { return false; }
};

// A burst of transmissions under the stack's lock: xmit_more on for its life, the doorbell rung for
// whatever waits at its end. kernel: the xmit_more hint a qdisc run (dequeue_skb's bulk) passes down.
class XmitMoreScope {
 public:
  explicit XmitMoreScope(Netdev& dev) : dev_(dev), outer_(dev.xmit_more()) { dev_.set_xmit_more(true); }
  ~XmitMoreScope() {
    dev_.set_xmit_more(outer_);
    if (!outer_) dev_.flush_tx();
  }
  XmitMoreScope(const XmitMoreScope&) = delete;
  XmitMoreScope& operator=(const XmitMoreScope&) = delete;

 private:
  Netdev& dev_;
  bool outer_;
};

}  // namespace xmit
