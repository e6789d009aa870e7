// verbs/xdp/xdp_netdev.cc — XdpNetdev: AF_XDP socket setup over the raw ABI and the data path.
// Kernel counterparts: xsk_setsockopt()/xsk_mmap()/xsk_bind() (control), xsk_sendmsg(), xsk_poll().
#include "verbs/xdp/xdp_netdev.h"

#include <net/if.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "stack/dev/link_query.h"
#include "stack/dev/sw_offload.h"

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif

namespace xmit::xdp {
namespace {

constexpr uint32_t kEthHlen = 14;
constexpr uint32_t kBatch = 64;     // descriptors handled per ring pass (stack arrays, no allocation)
constexpr uint32_t kKickBatch = 32;  // kernel: TX_BATCH_SIZE, frames one copy-mode sendto() sends

int fail(std::string* why, int err, const std::string& what) {
  if (why != nullptr) *why = what + ": " + strerror(-err);
  return err;
}

uint64_t mono_now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000u + uint64_t(ts.tv_nsec);
}

bool pow2(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

// Byte `off` of a frame given as segments; the caller has checked off < total length.
uint8_t byte_at(absl::Span<const FrameSeg> segs, uint32_t off) {
  for (const FrameSeg& s : segs) {
    if (off < s.len) return s.data[off];
    off -= s.len;
  }
  return 0;
}

// Maps one ring: `count` entries of `Desc` after the producer/consumer/flags words.
template <typename Desc>
int map_ring(int fd, const xdp_ring_offset& off, uint32_t count, uint64_t pgoff, XskRingMap<Desc>* r) {
  size_t len = off.desc + size_t(count) * sizeof(Desc);
  void* map = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, off_t(pgoff));
  if (map == MAP_FAILED) return -errno;
  auto* base = static_cast<uint8_t*>(map);
  r->map = map;
  r->map_len = len;
  r->producer = reinterpret_cast<uint32_t*>(base + off.producer);
  r->consumer = reinterpret_cast<uint32_t*>(base + off.consumer);
  r->flags = reinterpret_cast<uint32_t*>(base + off.flags);
  r->ring = reinterpret_cast<Desc*>(base + off.desc);
  r->mask = count - 1;
  return 0;
}

int set_ring_size(int fd, int opt, uint32_t count) {
  return setsockopt(fd, SOL_XDP, opt, &count, sizeof count) < 0 ? -errno : 0;
}

int mmap_offsets(int fd, xdp_mmap_offsets* off, std::string* why) {
  socklen_t optlen = sizeof *off;
  if (getsockopt(fd, SOL_XDP, XDP_MMAP_OFFSETS, off, &optlen) < 0) return fail(why, -errno, "XDP_MMAP_OFFSETS");
  if (optlen != sizeof *off) return fail(why, -EOPNOTSUPP, "XDP_MMAP_OFFSETS without ring flags (kernel < 5.4)");
  return 0;
}

// EBUSY: the queue may still be its last socket's — xsk_release() leaves the queue to
// xp_release_deferred() (a workqueue), after that socket's TX skbs are freed, so a program
// started as soon as the previous one on this queue exited finds it busy for a moment (seen: an
// e2e test restarting redis-server). Retried for up to 1 s; a queue a live socket holds stays
// busy and fails as before.
int bind_xsk(int fd, const sockaddr_xdp& sxdp, bool wait) {
  const auto* sa = reinterpret_cast<const sockaddr*>(&sxdp);
  int rc = bind(fd, sa, sizeof sxdp);
  for (int i = 0; wait && rc < 0 && errno == EBUSY && i < 100; ++i) {
    usleep(10000);
    rc = bind(fd, sa, sizeof sxdp);
  }
  return rc < 0 ? -errno : 0;
}


}  // namespace

int XdpNetdev::open(const XdpOptions& opt, std::unique_ptr<XdpNetdev>* out, std::string* why) {
  if (opt.ifname.empty() || opt.ifname.size() >= IFNAMSIZ)
    return fail(why, -EINVAL, "bad interface name '" + opt.ifname + "'");
  if (!pow2(opt.rx_frames) || !pow2(opt.tx_frames))
    return fail(why, -EINVAL, "rx_frames and tx_frames must be powers of two");
  std::unique_ptr<XdpNetdev> d(new XdpNetdev());
  d->ifname_ = opt.ifname;
  d->queue_id_ = opt.queue_id;
  d->bind_wait_ = opt.bind_wait;
  d->tx_frames_ = opt.tx_frames;
  d->tx_kick_batch_ = std::clamp<uint32_t>(opt.tx_kick_batch, 1, std::max<uint32_t>(opt.tx_frames / 2, 1));

  d->ifindex_ = int(if_nametoindex(opt.ifname.c_str()));
  if (d->ifindex_ == 0) return fail(why, -errno, "interface " + opt.ifname);
  uint32_t mtu = 0;
  if (int err = query_link(opt.ifname, &mtu, d->mac_); err < 0)
    return fail(why, err, "SIOCGIFMTU/SIOCGIFHWADDR on " + opt.ifname);
  // A steered flow's frames go to the socket of the queue the NIC's RSS put them on (the XDP
  // program cannot redirect across queues), so every RX queue needs one.
  uint32_t queues = 1;
  if (int err = query_rx_queues(opt.ifname, &queues); err < 0)
    return fail(why, err, "ETHTOOL_GCHANNELS on " + opt.ifname);
  if (queues > kMaxRxQueues)
    return fail(why, -EOPNOTSUPP, opt.ifname + " has " + std::to_string(queues) + " RX queues, xmit serves at most " +
                                      std::to_string(kMaxRxQueues) + " (ethtool -L " + opt.ifname + " combined N)");
  d->link_queues_ = queues;
  std::vector<uint32_t> mine;  // the queues this device opens; mine[0] sends
  if (opt.shared_prog != nullptr) {
    for (uint32_t q = opt.slot; opt.slots > 0 && q < queues; q += opt.slots) mine.push_back(q);
    if (mine.empty())
      return fail(why, -ENODEV, opt.ifname + " has " + std::to_string(queues) + " RX queue" + (queues == 1 ? "" : "s") +
                                    ": none left for worker " + std::to_string(opt.slot + 1) + " of " +
                                    std::to_string(opt.slots) + " (ethtool -L " + opt.ifname + " combined " +
                                    std::to_string(opt.slots) + ", or fewer workers)");
    d->queue_id_ = mine[0];
  } else {
    if (opt.queue_id >= queues)
      return fail(why, -EINVAL, opt.ifname + " has no queue " + std::to_string(opt.queue_id));
    mine.push_back(opt.queue_id);
    for (uint32_t q = 0; q < queues; ++q)
      if (q != opt.queue_id) mine.push_back(q);
  }
  const uint32_t n = uint32_t(mine.size());
  d->queue_frames_ = opt.rx_frames;
  while (n > 1 && d->queue_frames_ > kMinQueueFrames && d->queue_frames_ * n > opt.rx_frames)
    d->queue_frames_ /= 2;
  d->rx_frames_ = d->queue_frames_ * n;
  // The frame has to be copied into the UMEM anyway, so the device finishes IPv4 and L4 checksums
  // during that copy (tx_finish_csum(), as a NIC would) and advertises them.
  d->features_ = NetdevFeatures{};
  d->features_.ip_csum = true;
  d->features_.l4_csum = true;
  d->features_.max_segs = kMaxSegs;
  // TSO: the copy into the UMEM cuts segments (xmit()), so the stack sends whole GSO skbs.
  d->features_.tso = true;
  d->features_.tso_max_size = 65536;  // kernel: GSO_LEGACY_MAX_SIZE
  // A frame must fit an RX frame of the UMEM: with a larger MTU (jumbo frames) the stack keeps to
  // what one holds, so TCP advertises an MSS its peers' segments fit in; longer frames (a peer's
  // unfragmented UDP) the XDP program leaves to the kernel.
  d->link_mtu_ = mtu;
  d->features_.mtu = std::min(mtu, kRxFrameRoom - kEthHlen);
  d->features_.max_frame = d->features_.mtu + kEthHlen;

  d->rxq_.reserve(n);  // RxQueue rings stay where they are
  if (int err = d->setup_umem_and_rings(why); err < 0) return err;

  if (opt.shared_prog != nullptr) {
    d->prog_ = opt.shared_prog;
  } else {
    if (int err = XdpProg::open(d->ifindex_, opt.mode, &d->own_prog_, why); err < 0) return err;
    d->prog_ = d->own_prog_.get();
  }

  // Copy mode is forced where zero-copy cannot work (generic XDP); otherwise the kernel tries
  // zero-copy and falls back to copy by itself (veth has no zero-copy support).
  sockaddr_xdp sxdp{};
  sxdp.sxdp_family = AF_XDP;
  sxdp.sxdp_flags = XDP_USE_NEED_WAKEUP | (d->prog_->native() ? 0 : XDP_COPY);
  sxdp.sxdp_ifindex = uint32_t(d->ifindex_);
  sxdp.sxdp_queue_id = d->queue_id_;
  if (int err = bind_xsk(d->xsk_fd_, sxdp, d->bind_wait_); err < 0)
    return fail(why, err, "bind AF_XDP socket to " + opt.ifname + " queue " + std::to_string(d->queue_id_));
  xdp_options xo{};
  socklen_t xol = sizeof xo;
  if (getsockopt(d->xsk_fd_, SOL_XDP, XDP_OPTIONS, &xo, &xol) == 0)
    d->zerocopy_ = (xo.flags & XDP_OPTIONS_ZEROCOPY) != 0;
  d->take_queue_not_accepting(d->queue_id_);
  if (int err = d->prog_->set_xsk(d->queue_id_, d->xsk_fd_); err < 0)
    return fail(why, err, "XSKMAP update for queue " + std::to_string(d->queue_id_));
  for (uint32_t i = 1; i < n; ++i) {
    if (int err = d->add_rx_queue(mine[i], why); err < 0) return err;
  }
  if (n > 1) {
    d->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (d->epoll_fd_ < 0) return fail(why, -errno, "epoll_create1");
    for (const RxQueue& q : d->rxq_) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = q.qid;
      if (epoll_ctl(d->epoll_fd_, EPOLL_CTL_ADD, q.fd, &ev) < 0) return fail(why, -errno, "epoll_ctl");
    }
  }
  *out = std::move(d);
  return 0;
}

int XdpNetdev::setup_umem_and_rings(std::string* why) {
  xsk_fd_ = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (xsk_fd_ < 0) return fail(why, -errno, "socket(AF_XDP)");
  RxQueue& q = rxq_.emplace_back();
  q.qid = queue_id_;
  q.fd = xsk_fd_;
  q.frames = queue_frames_;

  umem_len_ = size_t(rx_frames_ + tx_frames_) * kFrameSize;
  void* umem = mmap(nullptr, umem_len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (umem == MAP_FAILED) return fail(why, -errno, "mmap UMEM");
  umem_ = static_cast<uint8_t*>(umem);

  xdp_umem_reg reg{};
  reg.addr = reinterpret_cast<uint64_t>(umem_);
  reg.len = umem_len_;
  reg.chunk_size = kFrameSize;
  reg.headroom = 0;
  if (setsockopt(xsk_fd_, SOL_XDP, XDP_UMEM_REG, &reg, sizeof reg) < 0)
    return fail(why, -errno, "XDP_UMEM_REG");
  if (int err = set_ring_size(xsk_fd_, XDP_UMEM_FILL_RING, q.frames); err < 0)
    return fail(why, err, "XDP_UMEM_FILL_RING");
  if (int err = set_ring_size(xsk_fd_, XDP_UMEM_COMPLETION_RING, tx_frames_); err < 0)
    return fail(why, err, "XDP_UMEM_COMPLETION_RING");
  if (int err = set_ring_size(xsk_fd_, XDP_RX_RING, q.frames); err < 0) return fail(why, err, "XDP_RX_RING");
  if (int err = set_ring_size(xsk_fd_, XDP_TX_RING, tx_frames_); err < 0) return fail(why, err, "XDP_TX_RING");

  xdp_mmap_offsets off{};
  if (int err = mmap_offsets(xsk_fd_, &off, why); err < 0) return err;
  if (int err = map_rx_rings(&q, off, why); err < 0) return err;
  if (int err = map_ring(xsk_fd_, off.cr, tx_frames_, XDP_UMEM_PGOFF_COMPLETION_RING, &comp_.m); err < 0)
    return fail(why, err, "mmap completion ring");
  if (int err = map_ring(xsk_fd_, off.tx, tx_frames_, XDP_PGOFF_TX_RING, &tx_.m); err < 0)
    return fail(why, err, "mmap TX ring");
  comp_.init_indices();
  tx_.init_indices();

  rx_held_.assign(rx_frames_, 0);
  tx_cookie_.assign(tx_frames_, 0);
  tx_free_.reserve(tx_frames_);
  for (uint32_t i = tx_frames_; i > 0; --i) tx_free_.push_back(i - 1);
  return 0;
}

// Maps `q`'s fill and RX rings and puts each of its RX frames in the fill ring (the ring holds
// exactly q.frames entries, so a recycled frame always finds a slot).
int XdpNetdev::map_rx_rings(RxQueue* q, const xdp_mmap_offsets& off, std::string* why) {
  q->first_frame = uint32_t(rxq_.size() - 1) * queue_frames_;
  if (int err = map_ring(q->fd, off.fr, q->frames, XDP_UMEM_PGOFF_FILL_RING, &q->fill.m); err < 0)
    return fail(why, err, "mmap fill ring");
  if (int err = map_ring(q->fd, off.rx, q->frames, XDP_PGOFF_RX_RING, &q->rx.m); err < 0)
    return fail(why, err, "mmap RX ring");
  q->fill.init_indices();
  q->rx.init_indices();
  uint32_t idx = 0;
  if (q->fill.reserve(q->frames, &idx) != q->frames) return fail(why, -EIO, "fill ring not empty");
  for (uint32_t i = 0; i < q->frames; ++i) q->fill.m.slot(idx + i) = uint64_t(q->first_frame + i) * kFrameSize;
  q->fill.submit();
  return 0;
}

// A socket on queue `qid` sharing the UMEM (kernel: xsk_bind() with XDP_SHARED_UMEM on another
// queue: a buffer pool of its own, so its own fill and completion rings; copy/zero-copy and
// need_wakeup as the UMEM's socket). It only receives: no TX ring, its completion ring unused.
int XdpNetdev::add_rx_queue(uint32_t qid, std::string* why) {
  const std::string where = " (queue " + std::to_string(qid) + ")";
  RxQueue& q = rxq_.emplace_back();
  q.qid = qid;
  q.frames = queue_frames_;
  q.fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (q.fd < 0) return fail(why, -errno, "socket(AF_XDP)" + where);
  if (int err = set_ring_size(q.fd, XDP_UMEM_FILL_RING, q.frames); err < 0)
    return fail(why, err, "XDP_UMEM_FILL_RING" + where);
  if (int err = set_ring_size(q.fd, XDP_UMEM_COMPLETION_RING, 64); err < 0)
    return fail(why, err, "XDP_UMEM_COMPLETION_RING" + where);
  if (int err = set_ring_size(q.fd, XDP_RX_RING, q.frames); err < 0) return fail(why, err, "XDP_RX_RING" + where);
  xdp_mmap_offsets off{};
  if (int err = mmap_offsets(q.fd, &off, why); err < 0) return err;
  if (int err = map_rx_rings(&q, off, why); err < 0) return err;
  sockaddr_xdp sxdp{};
  sxdp.sxdp_family = AF_XDP;
  sxdp.sxdp_flags = XDP_SHARED_UMEM;
  sxdp.sxdp_ifindex = uint32_t(ifindex_);
  sxdp.sxdp_queue_id = qid;
  sxdp.sxdp_shared_umem_fd = uint32_t(xsk_fd_);
  if (int err = bind_xsk(q.fd, sxdp, bind_wait_); err < 0)
    return fail(why, err, "bind AF_XDP socket to " + ifname_ + " queue " + std::to_string(qid));
  take_queue_not_accepting(qid);
  if (int err = prog_->set_xsk(qid, q.fd); err < 0) return fail(why, err, "XSKMAP update" + where);
  return 0;
}

int XdpNetdev::steer(const FlowKey& key) {
  int err = prog_->steer(key);
  if (own_prog_ != nullptr || key.remote_port != 0) return err;
  // Another worker (or the master) steered the listening port already: the rule serves every
  // worker's queues.
  if (err == -EEXIST) err = 0;
  if (err == 0 && port_rules_++ == 0) set_accepting(true);
  return err;
}

int XdpNetdev::unsteer(const FlowKey& key) {
  if (own_prog_ != nullptr || key.remote_port != 0) return prog_->unsteer(key);
  // A listening port's rule stays while the master's program does: the other workers' connections
  // ride on it (a worker's own 4-tuple rules are its own). Without a listener left, this worker's
  // queues send new connections to the kernel's listening socket, which the others still accept.
  if (port_rules_ > 0 && --port_rules_ == 0) set_accepting(false);
  return 0;
}

// A pre-fork worker's queue, once its bind() succeeded (the queue is this device's: an attempt
// that finds it busy must not touch another worker's flag) and before the XSKMAP points at it: no
// new connections until a listening port is steered through this device (a worker without a
// listener, or before it adopts one); the kernel's listener takes them meanwhile.
void XdpNetdev::take_queue_not_accepting(uint32_t qid) {
  if (own_prog_ == nullptr) (void)prog_->set_accepting(qid, false);
}

void XdpNetdev::set_accepting(bool on) {
  for (const RxQueue& q : rxq_) (void)prog_->set_accepting(q.qid, on);
}

XdpNetdev::~XdpNetdev() {
  own_prog_.reset();  // closes the bpf_link: the kernel detaches the program
  if (epoll_fd_ >= 0) close(epoll_fd_);
  for (RxQueue& q : rxq_) {
    if (q.fd >= 0) close(q.fd);  // xsk_fd_ among them
    q.fill.m.unmap();
    q.rx.m.unmap();
  }
  comp_.m.unmap();
  tx_.m.unmap();
  if (umem_ != nullptr) munmap(umem_, umem_len_);
}

void XdpNetdev::unmap_after_fork() {
  for (RxQueue& q : rxq_) {
    q.fill.m.unmap();
    q.rx.m.unmap();
  }
  comp_.m.unmap();
  tx_.m.unmap();
  if (umem_ != nullptr) munmap(umem_, umem_len_);
  umem_ = nullptr;
}

// Length of a frame the device can send, or -errno; with `dst`, also copies it there and finishes
// its checksums. Reads the frame only through `segs`.
int XdpNetdev::prepare_frame(const TxFrame& f, uint8_t* dst, uint32_t* len_out) {
  if (int err = tx_frame_check(f, features_); err < 0) return err;
  const uint32_t len = tx_frame_len(f);
  if (len < kEthHlen) return -EINVAL;
  if (f.flags & kTxIpCsum) {  // checked here so that tx_finish_csum() below cannot fail
    uint8_t vihl = len > kEthHlen ? byte_at(f.segs, kEthHlen) : 0;
    uint32_t ihl = (vihl & 0xf) * 4u;
    if ((vihl >> 4) != 4 || ihl < 20 || kEthHlen + ihl > len) return -EINVAL;
  }
  *len_out = len;
  if (dst == nullptr) return 0;
  tx_frame_gather(f, dst);
  return tx_finish_csum(dst, len, f.flags, f.csum_start, f.csum_offset);
}

int XdpNetdev::xmit(absl::Span<const TxFrame> frames) {
  // Frames the device can never send stop the batch; the ones before them still go. A TSO frame
  // takes one descriptor and one TX frame per segment, and is taken whole or not at all.
  uint32_t ok = 0;
  int err = 0;
  uint32_t descs[kBatch];  // descriptors each frame of the first kBatch takes
  for (const TxFrame& f : frames) {
    if (ok == kBatch) break;
    uint32_t len;
    if ((err = prepare_frame(f, nullptr, &len)) < 0) break;
    uint32_t d = 1;
    if (f.flags & kTxTso) {
      int segs = tso_segs(f);
      if (segs < 0) {
        err = segs;
        break;
      }
      d = uint32_t(segs);
    }
    descs[ok++] = d;
  }
  if (ok == 0) return err;

  // Whole frames while TX frames and ring slots last.
  const uint32_t have = std::min<uint32_t>(uint32_t(tx_free_.size()), tx_.nb_free(tx_frames_));
  uint32_t n = 0, total = 0;
  while (n < ok && total + descs[n] <= have) total += descs[n++];
  uint32_t idx = 0;
  if (n == 0 || tx_.reserve(total, &idx) != total) return 0;  // ring or TX frames exhausted: try again later
  uint32_t slot = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const TxFrame& f = frames[i];
    // Each descriptor gets a TX frame; the frame's cookie goes with its last one, which completes
    // last (the kernel completes a socket's descriptors in ring order).
    auto post = [&](uint32_t len, uint32_t frame, bool last) {
      tx_cookie_[frame] = last ? f.cookie : kNoCookie;
      xdp_desc& d = tx_.m.slot(idx + slot++);
      d.addr = uint64_t(rx_frames_ + frame) * kFrameSize;
      d.len = len;
      d.options = 0;
    };
    if (!(f.flags & kTxTso)) {
      uint32_t frame = tx_free_.back();
      tx_free_.pop_back();
      uint32_t len = 0;
      prepare_frame(f, umem_ + uint64_t(rx_frames_ + frame) * kFrameSize, &len);  // validated above
      post(len, frame, true);
      continue;
    }
    // TSO done here, as a NIC would: each segment cut straight into its UMEM frame with its own
    // headers and both checksums (tso_segment_sg(); the copy happens anyway in copy mode).
    uint32_t frame = 0;
    tso_segment_sg(
        f,
        [&](int) {
          frame = tx_free_.back();
          tx_free_.pop_back();
          return umem_ + uint64_t(rx_frames_ + frame) * kFrameSize;
        },
        [&](int seg, uint32_t len) { post(len, frame, uint32_t(seg) + 1 == descs[i]); });
    ++stats_.tx_tso_frames;
  }
  tx_.submit();
  stats_.tx_frames += total;
  // Under xmit_more (a burst whose end flushes) only whole kernel batches ring it.
  uint32_t waiting = tx_.outstanding();
  if (xmit_more_) {
    if (waiting >= kKickBatch) kick_tx(waiting / kKickBatch);
  } else if (waiting >= tx_kick_batch_ || tx_idle_ || hold_armed_) {
    kick_tx((waiting + kKickBatch - 1) / kKickBatch);
  }
  if (hold_armed_) {
    hold_armed_ = false;
    if (hold_fn_ != nullptr) hold_fn_(hold_arg_);
  }
  tx_idle_ = false;
  return int(n);
}

int XdpNetdev::kernel_stats(xdp_statistics* out) const {
  *out = {};
  for (const RxQueue& q : rxq_) {
    xdp_statistics st{};
    socklen_t len = sizeof st;
    if (getsockopt(q.fd, SOL_XDP, XDP_STATISTICS, &st, &len) < 0) return -errno;
    out->rx_dropped += st.rx_dropped;
    out->rx_invalid_descs += st.rx_invalid_descs;
    out->tx_invalid_descs += st.tx_invalid_descs;
    out->rx_ring_full += st.rx_ring_full;
    out->rx_fill_ring_empty_descs += st.rx_fill_ring_empty_descs;
    out->tx_ring_empty_descs += st.tx_ring_empty_descs;
  }
  return 0;
}

void XdpNetdev::set_tx_kick_batch(uint32_t n) {
  tx_kick_batch_ = std::clamp<uint32_t>(n, 1, std::max<uint32_t>(tx_frames_ / 2, 1));
  flush_tx();  // a smaller batch: what waits may already be due
}

void XdpNetdev::flush_tx() {
  uint32_t waiting = tx_.outstanding();
  if (waiting == 0) {
    tx_idle_ = true;  // nothing sent since the last doorbell: the next frame rings it at once
    return;
  }
  ++stats_.tx_flushes;
  kick_tx((waiting + kKickBatch - 1) / kKickBatch);
}

// sendto() only when the kernel flags the TX ring: in copy mode (veth) it always does, and each
// call sends at most TX_BATCH_SIZE frames, answering EAGAIN while more are queued.
void XdpNetdev::kick_tx(uint32_t batches) {
  for (uint32_t i = 0; i < batches + 1 && tx_.m.needs_wakeup(); ++i) {
    ++stats_.tx_kicks;
    if (sendto(xsk_fd_, nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0) return;
    if (errno == EAGAIN) continue;
    // EBUSY: another sendmsg runs; ENOBUFS: no skb; ENETDOWN: link down. The frames stay in the
    // ring and the next poll_tx() kicks again.
    if (errno != EBUSY && errno != ENOBUFS && errno != ENETDOWN) ++stats_.tx_kick_errors;
    return;
  }
}

int XdpNetdev::poll_tx(absl::FunctionRef<void(uint64_t cookie)> done) {
  // Frames a failed kick left in the ring go at the next poll; frames below the kick batch wait
  // for flush_tx() (the stack polls before every send: a kick here would be one per datagram).
  uint32_t pending = tx_.outstanding();
  if (pending >= tx_kick_batch_) kick_tx((pending + kKickBatch - 1) / kKickBatch);
  int reaped = 0;
  uint64_t descs = 0;
  for (;;) {
    uint32_t idx = 0;
    uint32_t n = comp_.peek(kBatch, &idx);
    if (n == 0) break;
    uint64_t cookies[kBatch];
    uint32_t nc = 0;
    for (uint32_t i = 0; i < n; ++i) {
      uint64_t frame = comp_.m.slot(idx + i) / kFrameSize;
      if (frame < rx_frames_ || frame >= uint64_t(rx_frames_) + tx_frames_) continue;  // not ours
      uint32_t t = uint32_t(frame - rx_frames_);
      if (tx_cookie_[t] != kNoCookie) cookies[nc++] = tx_cookie_[t];
      tx_free_.push_back(t);
    }
    comp_.release();
    descs += n;
    // The frames are back on the free list before the callback runs: done() may xmit() again.
    for (uint32_t i = 0; i < nc; ++i) done(cookies[i]);
    reaped += int(nc);
  }
  stats_.tx_done += descs;
  note_behind();
  return reaped;
}

void XdpNetdev::note_behind() {
  // Frames out of the free list, less those still in the TX ring: the kernel took them and has not
  // completed them yet. An episode waits for those (the kernel completes in ring order: until
  // tx_done reaches behind_until_), not for later frames, so a sender that keeps the device busy
  // still closes it.
  if (behind_since_ns_ == 0) {
    const uint32_t in_kernel = tx_frames_ - uint32_t(tx_free_.size()) - tx_.outstanding();
    if (in_kernel == 0) return;
    ++stats_.tx_reap_behind;
    behind_since_ns_ = mono_now_ns();
    behind_until_ = stats_.tx_done + in_kernel;
    return;
  }
  if (stats_.tx_done < behind_until_) {
    ++stats_.tx_reap_behind;
    return;
  }
  const uint64_t d = mono_now_ns() - behind_since_ns_;
  behind_since_ns_ = 0;
  ++stats_.tx_behind_episodes;
  stats_.tx_behind_ns_total += d;
  stats_.tx_behind_ns_max = std::max(stats_.tx_behind_ns_max, d);
  ++stats_.tx_behind_hist[d < 10'000 ? 0 : d < 100'000 ? 1 : d < 1'000'000 ? 2 : 3];
}

// Each queue in turn from the one after where the last call began, so that a busy queue does not
// starve the others (the kernel's NAPI polls its queues round robin too).
int XdpNetdev::poll_rx(int budget, absl::FunctionRef<bool(const RxFrame&)> deliver) {
  const uint32_t nq = uint32_t(rxq_.size());
  const uint32_t first = rx_next_;
  rx_next_ = nq > 1 ? (first + 1) % nq : 0;
  int delivered = 0;
  for (uint32_t i = 0; i < nq && delivered < budget; ++i)
    delivered += poll_rx_queue(rxq_[(first + i) % nq], budget - delivered, deliver);
  stats_.rx_frames += uint64_t(delivered);
  return delivered;
}

int XdpNetdev::poll_rx_queue(RxQueue& q, int budget, absl::FunctionRef<bool(const RxFrame&)> deliver) {
  int delivered = 0;
  while (delivered < budget) {
    uint32_t idx = 0;
    uint32_t n = q.rx.peek(std::min<uint32_t>(uint32_t(budget - delivered), kBatch), &idx);
    if (n == 0) break;
    uint64_t refill[kBatch];
    uint32_t nrefill = 0;
    for (uint32_t i = 0; i < n; ++i) {
      const xdp_desc d = q.rx.m.slot(idx + i);
      uint64_t base = d.addr / kFrameSize * kFrameSize;
      uint64_t frame = d.addr / kFrameSize;
      // Not one of this queue's RX frames: ignored (the kernel hands out only what its fill ring got).
      if (frame < q.first_frame || frame >= q.first_frame + q.frames || d.addr + d.len > base + kFrameSize) continue;
      rx_held_[frame] = 1;
      RxFrame rf{umem_ + d.addr, d.len, base};
      ++delivered;
      if (!deliver(rf)) {
        rx_held_[frame] = 0;
        refill[nrefill++] = base;
      }
    }
    q.rx.release();
    if (nrefill != 0) {
      uint32_t fidx = 0;
      q.fill.reserve(nrefill, &fidx);  // cannot fail: the fill ring has a slot for every RX frame
      for (uint32_t i = 0; i < nrefill; ++i) q.fill.m.slot(fidx + i) = refill[i];
      q.fill.submit();
    }
  }
  // A driver that ran out of fill entries sleeps until poked (zero-copy drivers; copy mode never asks).
  if (q.fill.m.needs_wakeup()) {
    ++stats_.fill_kicks;
    recvfrom(q.fd, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
  }
  stats_.rx_queue_frames[q.qid] += uint64_t(delivered);
  return delivered;
}

void XdpNetdev::rx_recycle(uint64_t buf_id) {
  uint64_t frame = buf_id / kFrameSize;
  // Ignore ids that are not a held RX frame: a double recycle would put a frame in the ring twice.
  if (buf_id % kFrameSize != 0 || frame >= rx_frames_ || !rx_held_[frame]) return;
  rx_held_[frame] = 0;
  RxQueue& q = rxq_[frame / queue_frames_];  // back to the fill ring of the queue that owns it
  uint32_t idx = 0;
  q.fill.reserve(1, &idx);
  q.fill.m.slot(idx) = buf_id;
  q.fill.submit();
}

}  // namespace xmit::xdp
