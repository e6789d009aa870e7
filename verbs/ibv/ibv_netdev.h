// verbs/ibv/ibv_netdev.h — IbvNetdev: one ibverbs raw-packet queue pair (IBV_QPT_RAW_PACKET) as a
// Netdev, over the verbs function table (real libibverbs or the software device).
// Counterparts: a NIC driver's TX/RX rings (mlx5e_xmit(), mlx5e_poll_tx_cq(), mlx5e_post_rx_wqes())
// done from user space the way DPDK's mlx5 PMD and rdma-core's raw_ethernet examples do it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "stack/dev/netdev.h"
#include "verbs/ibv/ibv_ops.h"
#include "verbs/ibv/mr_cache.h"

namespace xmit::ibv {

struct IbvOptions {
  std::string ifname;
  const IbvOps* ops = nullptr;  // nullptr: ibv_real_ops()
  uint32_t rx_bufs = 1024;      // receive buffers = receive queue depth (a power of two)
  uint32_t tx_depth = 1024;     // send queue depth = TX bounce slots (a power of two)
  uint32_t signal_every = 16;   // selective signalling: every Nth send WR asks for a completion
  uint32_t rx_refill_batch = 32;  // receive WRs are posted in chains of this many
  uint32_t inline_max = 128;    // frames up to this size go inline (if the device allows as much)
  uint32_t max_flows = 1024;
  uint32_t mr_cache_entries = 64;  // registrations of user memory (MSG_ZEROCOPY) held at once; 0: none (all copied)
  uint32_t tso_bounce = 16;     // 64 KiB bounce buffers for TSO payloads over 4 KiB that must be copied
};

struct IbvStats {
  uint64_t tx_frames = 0;     // send WRs posted
  uint64_t tx_tso = 0;        // of which IBV_WR_TSO (one GSO skb, cut by the device)
  uint64_t tx_inline = 0;     // of which inline
  uint64_t tx_zero_copy = 0;  // of which read from registered memory in place
  uint64_t tx_copied = 0;     // of which copied into a bounce slot first
  uint64_t tx_user_in_place = 0;  // frames with user segments (MSG_ZEROCOPY) the device read in place
  uint64_t tx_user_copied = 0;    // frames with user segments copied (no registration): COPIED
  uint64_t tx_signaled = 0;   // of which asked for a completion
  uint64_t tx_done = 0;       // cookies reported by poll_tx()
  uint64_t tx_full = 0;       // xmit() calls that stopped at a full send queue
  uint64_t tx_tso_bounced = 0;   // copied TSO frames that took a 64 KiB bounce buffer
  uint64_t tx_bounce_full = 0;   // xmit() calls that stopped with every 64 KiB bounce buffer in use
  uint64_t tx_errors = 0;     // send completions with an error status (flushes included)
  uint64_t rx_frames = 0;
  uint64_t rx_errors = 0;     // receive completions with an error status (flushes included)
  uint64_t rx_posts = 0;      // post_recv() calls (each a chain of up to rx_refill_batch WRs)
  uint64_t qp_recoveries = 0;  // the QP went to the error state and was brought back to RTS
  uint64_t drain_timeouts = 0;
};

// Thread-safety: as Netdev — one thread at a time.
class IbvNetdev final : public Netdev {
 public:
  // One receive buffer / TX bounce slot: kBufSize, or for a larger MTU (jumbo frames) the power of
  // two its frames fit in, up to kMaxBufSize (buf_size()).
  static constexpr uint32_t kBufSize = 4096;
  static constexpr uint32_t kMaxBufSize = 16384;
  static constexpr uint32_t kTsoBounceSize = 65536;  // a copied TSO payload (tso_max_size is at most 64 KiB)
  static constexpr uint32_t kMaxSegs = 16;    // sges per send WR asked of the device
  static constexpr uint16_t kMaxTsoHeader = 192;  // Ethernet + IPv4 + TCP headers with options: 134

  // Opens the RDMA device and port behind `opt.ifname`. 0 or -errno; *why says which step failed
  // and, where there is one, the remedy. Nothing is printed.
  static int open(const IbvOptions& opt, std::unique_ptr<IbvNetdev>* out, std::string* why = nullptr);
  // Drains the send queue before freeing anything: the device never reads unmapped memory.
  ~IbvNetdev() override;
  IbvNetdev(const IbvNetdev&) = delete;
  IbvNetdev& operator=(const IbvNetdev&) = delete;

  const NetdevFeatures& features() const override { return features_; }
  const uint8_t* mac() const override { return mac_; }
  int ifindex() const override { return ifindex_; }

  // One send WR per frame, one sge per FrameSeg when every segment lies in registered memory
  // (register_memory()); otherwise the frame is copied into the slot's bounce buffer. Frames up
  // to the inline limit go inline. kTxIpCsum/kTxL4Csum become IBV_SEND_IP_CSUM (offered only when
  // the device reports IBV_RAW_PACKET_CAP_IP_CSUM); kTxTso becomes IBV_WR_TSO with the headers
  // up to the end of TCP's as wr.tso.hdr (offered only when tso_caps covers raw packet QPs; a TSO
  // payload that cannot be read in place is copied: into the slot's 4 KiB bounce buffer, or one
  // of tso_bounce 64 KiB buffers held until its completion; with all of those in use the frame is
  // not taken, as at a full send queue). Every signal_every-th WR and the last of each call are
  // signaled; one post_send() per call.
  int xmit(absl::Span<const TxFrame> frames) override;
  // A signaled completion retires its WR and the unsignaled ones before it: their cookies are
  // reported in posting order. Error completions are counted (stats, last_error()) and also
  // report the cookies (the device no longer reads the memory); the QP is then brought back to RTS.
  int poll_tx(absl::FunctionRef<void(uint64_t cookie)> done) override;
  int poll_rx(int budget, absl::FunctionRef<bool(const RxFrame&)> deliver) override;
  void rx_recycle(uint64_t buf_id) override;
  // One ibv_create_flow() rule per key: ETH (our MAC, IPv4) + IPv4 + TCP/UDP; connected keys
  // (remote set) at priority 0, wildcards at 1.
  int steer(const FlowKey& key) override;
  int unsteer(const FlowKey& key) override;
  // The completion channel's fd (non-blocking): readable when a frame was received or a signaled
  // send completed since the last poll_rx()/poll_tx(), which take the events and re-arm the CQs
  // (ibv_get_cq_event(3)). -1 when the device gave no channel: callers then poll on a timer.
  int wait_fd() const override { return channel_ != nullptr ? channel_->fd : -1; }
  // The send CQ is on the completion channel, armed again after each event (ibv_netdev_data.cc).
  bool tx_completion_wakes() const override { return channel_ != nullptr; }

  // User segments (FrameSeg::user, MSG_ZEROCOPY) outside these regions are registered through
  // the MR cache (mr_cache()) for as long as a WR reads them; when that fails (unmapped memory,
  // RLIMIT_MEMLOCK, every entry in use) the frame is copied and *TxFrame::zerocopy_success cleared.
  // Registers memory frames may point into (the stack's packet pools): segments inside it are
  // sent in place. 0, -EEXIST (already), -ENOSPC (8 regions), -errno of reg_mr.
  int register_memory(const void* base, size_t len);
  // -EBUSY while a posted send still reads the region (it is never deregistered under the
  // device), -ENOENT when not registered, else 0.
  int unregister_memory(const void* base);

  // Every fd behind the device: the context's command and async fds and the completion channel
  // (libibverbs), or all of the software device's (sw::sw_for_each_fd(): its AF_PACKET socket,
  // divert program, channels). For the preload's own-fd registry and a forked child.
  void for_each_fd(absl::FunctionRef<void(int fd)> f) const;
  // A fork()ed child's copy lets go without touching the device (the queues and the memory the
  // device reads are the parent's): for_each_fd()'s fds go to close_fd (taking no lock a parent
  // thread may have held), the software device forgets the parent's objects, and for_each_fd()
  // reports nothing more. Nothing else may be called afterwards (abandoned, not destroyed).
  void abandon_after_fork(absl::FunctionRef<void(int fd)> close_fd);

  const std::string& ibdev() const { return ibdev_; }
  uint8_t port() const { return port_; }
  const char* ops_name() const { return ops_->name; }
  uint32_t max_inline() const { return max_inline_; }
  uint32_t link_mtu() const { return link_mtu_; }  // the interface's; features().mtu is at most kMaxBufSize - 14
  uint32_t buf_size() const { return buf_size_; }
  uint32_t tx_outstanding() const { return uint32_t(sq_posted_ - sq_retired_); }
  const IbvStats& stats() const { return stats_; }
  const MrCache& mr_cache() const { return *mr_cache_; }
  const std::string& last_error() const { return last_error_; }  // the last error completion, or ""

 private:
  struct Region {
    const uint8_t* base = nullptr;
    size_t len = 0;
    ibv_mr* mr = nullptr;
    uint32_t users = 0;  // posted, unretired send WRs reading it
  };
  struct TxSlot {
    uint64_t cookie = 0;
    uint32_t regions = 0;  // bit i: the WR reads regions_[i]
    uint8_t nmr = 0;       // MR cache entries the WR holds a reference on
    int16_t mr[kMaxSegs] = {};
    int16_t tso_bounce = -1;  // the 64 KiB bounce buffer the WR reads, or -1
  };
  static constexpr uint32_t kMaxRegions = 8;
  static constexpr uint32_t kBatch = 64;

  IbvNetdev() = default;
  int setup(const IbvOptions& opt, std::string* why);
  int build_wr(const TxFrame& f, uint64_t n, uint32_t batch_idx, ibv_send_wr& w, uint32_t* nsge);
  int post_rx_batch(bool force);
  void release_slot(TxSlot& s);
  void retire_through(uint64_t wr_id, absl::FunctionRef<void(uint64_t)> done, int* reaped);
  int find_region(const uint8_t* p, uint32_t len) const;
  void maybe_recover();
  void take_events();
  static int qp_modify(const IbvOps* ops, ibv_qp* qp, ibv_qp_state s, uint8_t port);
  static int qp_to_rts(const IbvOps* ops, ibv_qp* qp, uint8_t port);
  void destroy();

  const IbvOps* ops_ = nullptr;
  std::string ifname_, ibdev_;
  uint8_t port_ = 1;
  int ifindex_ = 0;
  uint32_t link_mtu_ = 0;
  uint32_t buf_size_ = kBufSize;
  uint8_t mac_[6] = {};
  NetdevFeatures features_;
  uint32_t signal_every_ = 16;
  uint32_t refill_batch_ = 32;
  uint32_t max_inline_ = 0;
  uint32_t max_sge_ = 1;
  uint32_t max_flows_ = 0;

  ibv_context* ctx_ = nullptr;
  ibv_pd* pd_ = nullptr;
  ibv_comp_channel* channel_ = nullptr;
  ibv_cq* scq_ = nullptr;
  ibv_cq* rcq_ = nullptr;
  ibv_qp* qp_ = nullptr;
  bool qp_error_ = false;

  // [0, rx_bufs) receive buffers, then tx_depth bounce slots (buf_size_ each), then tso_bounce_ buffers of
  // kTsoBounceSize (at tso_bounce_mem_)
  uint8_t* mem_ = nullptr;
  size_t mem_len_ = 0;
  ibv_mr* mem_mr_ = nullptr;
  uint32_t rx_bufs_ = 0, tx_depth_ = 0;
  uint8_t* tso_bounce_mem_ = nullptr;
  std::vector<int16_t> tso_bounce_free_;  // capacity reserved at open: no allocation on a send

  // Send queue accounting, free-running: WR n uses slot n % tx_depth_; [retired, posted) are the
  // device's. wr_id is n.
  uint64_t sq_posted_ = 0, sq_retired_ = 0;
  std::vector<TxSlot> tx_slots_;
  Region regions_[kMaxRegions];
  std::unique_ptr<MrCache> mr_cache_;  // user memory (FrameSeg::user) registered while WRs read it

  // Receive: buffers not posted and not held by a caller, waiting to be posted in a batch.
  std::vector<uint32_t> rx_free_;
  std::vector<uint8_t> rx_held_;
  uint32_t rx_posted_ = 0;  // receive WRs the device holds

  std::vector<std::pair<FlowKey, ibv_flow*>> flows_;
  std::vector<ibv_send_wr> wrs_;  // kBatch WRs and kBatch * max_sge_ sges, allocated at open
  std::vector<ibv_sge> sges_;
  std::vector<uint8_t> tso_hdrs_;  // kBatch headers of kMaxTsoHeader bytes: wr.tso.hdr, copied at post
  std::vector<ibv_recv_wr> rwrs_;
  std::vector<ibv_sge> rsges_;

  IbvStats stats_;
  std::string last_error_;
};

}  // namespace xmit::ibv
