// verbs/xdp/xdp_netdev.h — XdpNetdev: an interface's AF_XDP sockets as a Netdev: one per RX queue
// (the NIC's RSS spreads flows over its queues, and a steered flow's frames reach only the socket
// of the queue they arrive on), sharing one UMEM; the first also sends. With the steering XDP
// program. Kernel counterpart: net/xdp/xsk.c seen from user space (XDP_SHARED_UMEM across queues,
// xp_assign_dev_shared()); the program is xmit_xdp.bpf.c.
#pragma once

#include <linux/if_xdp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "stack/dev/netdev.h"
#include "verbs/xdp/xdp_prog.h"
#include "verbs/xdp/xsk_ring.h"

namespace xmit::xdp {

struct XdpOptions {
  std::string ifname;
  uint32_t queue_id = 0;  // the queue whose socket sends; every RX queue of the interface receives
  XdpMode mode = XdpMode::kAuto;
  // UMEM frames (4096 B each) are split in two sets: RX frames circulate through fill -> RX ->
  // caller -> fill; TX frames through TX -> completion -> free list. A TX backlog never starves RX.
  // With several RX queues each gets rx_frames / queues of them (a power of two, at least 256).
  uint32_t rx_frames = 2048;  // power of two; also the fill ring size
  uint32_t tx_frames = 2048;  // power of two; also the TX and completion ring size
  // The TX doorbell (a sendto() wakeup when the kernel asks for one: always in copy mode) is rung
  // once this many frames wait in the TX ring, not per xmit(); 1: every xmit() rings it. The first
  // frame after a flush_tx() that found the ring empty rings it at once (a lone datagram is not
  // held); later ones wait for the batch, the next flush_tx() (see Netdev) or the flusher. Clamped
  // to [1, tx_frames / 2].
  uint32_t tx_kick_batch = 1;
  // Pre-fork workers (preload/workers.h): the steering program another process (the master that
  // made the listeners) attached, shared with its other workers; this device opens only the RX
  // queues q with q % slots == slot (queue_id is ignored: the first of them sends), -EBUSY if
  // another process holds the first, -ENODEV if there is none. A wildcard (listening port) rule is
  // then shared with the other workers: steer() finding it is success, unsteer() leaves it; once
  // this device's last one is unsteered (its listeners closed) its queues' SYNs go to the kernel
  // (XdpProg::set_accepting()), until a steer() again.
  XdpProg* shared_prog = nullptr;
  uint32_t slot = 0;
  uint32_t slots = 1;
  // A queue bind() finds busy is tried again for up to 1 s (the last socket of a program that
  // just exited leaves it only after a moment). false: -EBUSY at once (a worker looking for a
  // share that live workers may hold).
  bool bind_wait = true;
};

// Counters for the log and tests; none of them is needed to use the device.
struct XdpStats {
  uint64_t tx_frames = 0;   // frames handed to the TX ring (each TSO segment counts)
  uint64_t tx_tso_frames = 0;  // kTxTso frames segmented into the ring
  uint64_t tx_done = 0;     // completions reaped (ring descriptors, as tx_frames)
  uint64_t tx_kicks = 0;    // sendto() wakeups (TX ring flagged XDP_RING_NEED_WAKEUP)
  uint64_t tx_flushes = 0;  // flush_tx() calls that found frames waiting below the kick batch
  uint64_t tx_kick_errors = 0;  // a sendto() wakeup failed with something other than EAGAIN/EBUSY/ENOBUFS
  uint64_t rx_frames = 0;   // frames delivered by poll_rx()
  uint64_t rx_queue_frames[64] = {};  // ... by RX queue id (XdpNetdev::kMaxRxQueues of them)
  uint64_t fill_kicks = 0;  // recvfrom() wakeups (fill ring flagged XDP_RING_NEED_WAKEUP)
  // Completions that were not there yet when poll_tx() looked: a reap that leaves frames the kernel
  // has taken off the TX ring without their completion opens an episode (tx_reap_behind counts such
  // reaps, the opening one and those after it that still miss them); the first reap that finds
  // those frames completed closes it, its length (from the reap that opened it) in tx_behind_ns_*
  // and a histogram (< 10 us, < 100 us, < 1 ms, longer).
  // A TX completion raises no event on the AF_XDP fd, so this is how long a completion waited for
  // someone to look: what autocorked data behind it waited too.
  uint64_t tx_reap_behind = 0;
  uint64_t tx_behind_episodes = 0;
  uint64_t tx_behind_ns_total = 0;
  uint64_t tx_behind_ns_max = 0;
  uint64_t tx_behind_hist[4] = {};
};

// Thread-safety: as Netdev — one thread at a time.
class XdpNetdev final : public Netdev {
 public:
  static constexpr uint32_t kFrameSize = 4096;
  static constexpr uint16_t kMaxSegs = 18;  // kernel: MAX_SKB_FRAGS + 1; we copy, so any count would do
  // The largest frame the kernel puts into an RX frame: the chunk less XDP_PACKET_HEADROOM
  // (xsk_pool_get_rx_frame_size()); a longer one would be dropped at the socket, so the XDP program
  // passes it to the kernel (kXskRxFrameRoom in xmit_xdp.bpf.c) and the stack's MTU keeps under it.
  static constexpr uint32_t kRxFrameRoom = kFrameSize - 256;
  static constexpr uint32_t kMaxRxQueues = 64;  // the XDP program's XSKMAP size
  static constexpr uint32_t kMinQueueFrames = 256;

  // Opens `opt.ifname` (in the calling thread's network namespace): an AF_XDP socket on each of its
  // RX queues (ETHTOOL_GCHANNELS; 1 where the driver does not say), `opt.queue_id`'s owning the
  // UMEM and sending. -EOPNOTSUPP past kMaxRxQueues. 0 or -errno; *why (if given) says which step
  // failed. Nothing is printed.
  static int open(const XdpOptions& opt, std::unique_ptr<XdpNetdev>* out, std::string* why = nullptr);
  ~XdpNetdev() override;
  XdpNetdev(const XdpNetdev&) = delete;
  XdpNetdev& operator=(const XdpNetdev&) = delete;

  const NetdevFeatures& features() const override { return features_; }
  const uint8_t* mac() const override { return mac_; }
  int ifindex() const override { return ifindex_; }

  // Copies each frame into a TX UMEM frame, finishes kTxIpCsum / kTxL4Csum in software during the
  // copy (as a NIC finishes them), posts the batch and kicks the kernel if it asks. A kTxTso frame
  // is cut into gso_size segments straight into as many UMEM frames (TSO in the copy; its cookie
  // completes with the last), taken whole or not at all. 0 when TX ring or TX frames run out.
  int xmit(absl::Span<const TxFrame> frames) override;
  int poll_tx(absl::FunctionRef<void(uint64_t cookie)> done) override;
  int poll_rx(int budget, absl::FunctionRef<bool(const RxFrame&)> deliver) override;
  void rx_recycle(uint64_t buf_id) override;
  int steer(const FlowKey& key) override;
  int unsteer(const FlowKey& key) override;
  int steer_to_kernel(const FlowKey& key) override { return prog_->keep_in_kernel(key); }
  // POLLIN when an RX ring has frames: the socket's fd, or with several queues an epoll set of them.
  int wait_fd() const override { return epoll_fd_ >= 0 ? epoll_fd_ : xsk_fd_; }
  // A TX completion makes nothing readable (xsk_poll() reports the RX ring and TX ring space only):
  // see Netdev::tx_completion_wakes().
  void flush_tx() override;  // rings the doorbell for every frame still waiting in the TX ring
  void set_tx_kick_batch(uint32_t n);  // XdpOptions::tx_kick_batch, after open()
  // While on, xmit() rings the doorbell only once a full copy-mode batch (32 frames, what one
  // sendto() sends: kernel TX_BATCH_SIZE) waits; the caller's flush_tx() rings it for the rest.
  void set_xmit_more(bool on) override { xmit_more_ = on; }
  bool xmit_more() const override { return xmit_more_; }
  // The last flush_tx() found nothing waiting and no frame was held since.
  bool tx_idle() const { return tx_idle_; }
  // `fn(arg)` runs (from xmit(), on the sending thread) at the first xmit() after arm_tx_hold_hook(),
  // whose frames ring the doorbell at once: how the engine wakes its sleeping flusher before
  // frames may be held (engine.cc).
  void set_tx_hold_hook(void (*fn)(void*), void* arg) { hold_fn_ = fn; hold_arg_ = arg; }
  void arm_tx_hold_hook() { hold_armed_ = true; }

  const std::string& ifname() const { return ifname_; }
  uint32_t queue_id() const { return queue_id_; }
  uint32_t link_mtu() const { return link_mtu_; }  // the interface's; features().mtu is at most kRxFrameRoom - 14
  uint32_t rx_queues() const { return uint32_t(rxq_.size()); }
  uint32_t rx_queue_id(uint32_t i) const { return rxq_[i].qid; }
  uint32_t link_rx_queues() const { return link_queues_; }  // the interface's (ETHTOOL_GCHANNELS)
  bool native_mode() const { return prog_->native(); }       // XDP program in driver mode
  const char* mode_name() const { return native_mode() ? "native" : "generic"; }
  bool zerocopy() const { return zerocopy_; }                 // false: XDP_COPY (veth, generic)
  const XdpStats& stats() const { return stats_; }
  // The kernel's counters of these sockets, summed (getsockopt XDP_STATISTICS): frames the XDP
  // redirect dropped because an RX ring was full (rx_ring_full) or a fill ring empty, and the rest.
  // 0 or -errno.
  int kernel_stats(xdp_statistics* out) const;
  const XdpProg& prog() const { return *prog_; }
  // A forked child's copy lets go of the rings and the UMEM (the mappings hold the AF_XDP socket
  // open, keeping the queue busy after the parent exits); the caller closes for_each_fd()'s fds.
  // Nothing else may be called afterwards (the object is abandoned, not destroyed).
  void unmap_after_fork();
  // The AF_XDP sockets, their epoll set and every fd of the XDP attachment.
  void for_each_fd(absl::FunctionRef<void(int fd)> f) const {
    for (const RxQueue& q : rxq_)
      if (q.fd >= 0) f(q.fd);
    if (epoll_fd_ >= 0) f(epoll_fd_);
    prog_->for_each_fd(f);
  }

 private:
  // One RX queue's socket: its fill and RX rings and the RX frames it owns
  // ([first_frame, first_frame + frames) of the UMEM). rxq_[0] is the sending socket (xsk_fd_).
  struct RxQueue {
    uint32_t qid = 0;
    int fd = -1;
    uint32_t first_frame = 0;
    uint32_t frames = 0;
    XskProdRing<uint64_t> fill;  // we produce RX frame addresses, the kernel consumes
    XskConsRing<xdp_desc> rx;    // the kernel produces received frames, we consume
  };

  XdpNetdev() = default;
  int setup_umem_and_rings(std::string* why);
  int add_rx_queue(uint32_t qid, std::string* why);  // a socket sharing the UMEM on queue `qid`
  int map_rx_rings(RxQueue* q, const xdp_mmap_offsets& off, std::string* why);
  int poll_rx_queue(RxQueue& q, int budget, absl::FunctionRef<bool(const RxFrame&)> deliver);
  void kick_tx(uint32_t batches);
  void note_behind();  // XdpStats::tx_reap_behind and the episodes, after a reap
  int prepare_frame(const TxFrame& f, uint8_t* dst, uint32_t* len);

  std::string ifname_;
  bool bind_wait_ = true;
  uint32_t queue_id_ = 0;
  uint32_t link_mtu_ = 0;
  uint32_t link_queues_ = 1;
  int ifindex_ = 0;
  uint8_t mac_[6] = {};
  NetdevFeatures features_;
  bool zerocopy_ = false;
  uint32_t tx_kick_batch_ = 1;  // XdpOptions::tx_kick_batch, clamped
  bool tx_idle_ = true;         // the last flush_tx() found nothing waiting (see xmit())
  bool xmit_more_ = false;      // set_xmit_more()
  void (*hold_fn_)(void*) = nullptr;  // set_tx_hold_hook()
  void* hold_arg_ = nullptr;
  bool hold_armed_ = false;
  uint64_t behind_since_ns_ = 0;  // XdpStats::tx_reap_behind's open episode, or 0
  uint64_t behind_until_ = 0;     // ... closed once tx_done reaches this

  int xsk_fd_ = -1;          // the socket that owns the UMEM and sends (rxq_[0].fd)
  int epoll_fd_ = -1;        // wait_fd() with several RX queues
  uint8_t* umem_ = nullptr;  // shared with the kernel: RX frames written by the kernel, TX frames by us
  size_t umem_len_ = 0;
  uint32_t rx_frames_ = 0;   // frames [0, rx_frames_) are RX frames, the rest TX frames
  uint32_t queue_frames_ = 0;  // RX frames per queue: rxq_[i] owns [i * queue_frames_, (i + 1) * ...)
  uint32_t tx_frames_ = 0;

  std::vector<RxQueue> rxq_;    // one per RX queue of the interface
  uint32_t rx_next_ = 0;        // the queue poll_rx() starts at (round robin)
  XskConsRing<uint64_t> comp_;  // the kernel produces sent TX frame addresses, we consume
  XskProdRing<xdp_desc> tx_;    // we produce frames to send, the kernel consumes

  std::vector<uint32_t> tx_free_;     // TX frame indices (0-based within the TX set) we own
  static constexpr uint64_t kNoCookie = ~uint64_t{0};  // a TSO segment before the frame's last
  std::vector<uint64_t> tx_cookie_;   // per TX frame: the cookie poll_tx() reports (not kNoCookie)
  std::vector<uint8_t> rx_held_;      // per RX frame: 1 while a poll_rx() caller keeps it

  void take_queue_not_accepting(uint32_t qid);
  void set_accepting(bool on);  // XdpProg::set_accepting() for each of this device's queues
  std::unique_ptr<XdpProg> own_prog_;  // the program this device attached (none with shared_prog)
  uint32_t port_rules_ = 0;            // with shared_prog: listening ports steered through this device
  XdpProg* prog_ = nullptr;            // own_prog_ or XdpOptions::shared_prog
  XdpStats stats_;
};
static_assert(sizeof XdpStats::rx_queue_frames / sizeof(uint64_t) == XdpNetdev::kMaxRxQueues);

}  // namespace xmit::xdp
