// verbs/ibv/ibv_netdev.cc — IbvNetdev: bring-up (device, PD, MR, CQs, raw-packet QP to RTS, RX ring)
// and the data path (post_send with selective signalling, CQ reaping, RX refill, flow rules).
#include "verbs/ibv/ibv_netdev.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "stack/dev/sw_offload.h"

namespace xmit::ibv {
namespace {

constexpr uint32_t kEthHlen = 14;
constexpr uint32_t kMinFrame = 18;   // mlx5 refuses raw sends shorter than its inline L2 header
constexpr int kDrainPolls = 100000;  // destructor: CQ polls waiting for flushed sends, then give up

int fail(std::string* why, int err, const std::string& what) {
  if (why != nullptr) *why = what + ": " + strerror(-err);
  return err;
}

bool pow2(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

// Byte `off` of a frame given as segments; the caller has checked off < its length.
uint8_t byte_at(absl::Span<const FrameSeg> segs, uint32_t off) {
  for (const FrameSeg& s : segs) {
    if (off < s.len) return s.data[off];
    off -= s.len;
  }
  return 0;
}

// Copies bytes [off, off + len) of a frame given as segments to `dst`.
void copy_range(absl::Span<const FrameSeg> segs, uint32_t off, uint32_t len, uint8_t* dst) {
  for (const FrameSeg& s : segs) {
    if (len == 0) return;
    if (off >= s.len) {
      off -= s.len;
      continue;
    }
    const uint32_t n = std::min(s.len - off, len);
    memcpy(dst, s.data + off, n);
    dst += n;
    len -= n;
    off = 0;
  }
}

// MTU and MAC of the interface. kernel: dev_ifsioc_locked() SIOCGIFMTU / SIOCGIFHWADDR.
int query_link(const std::string& ifname, uint32_t* mtu, uint8_t mac[6]) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  ifreq ifr{};
  memcpy(ifr.ifr_name, ifname.data(), ifname.size());
  int err = 0;
  if (ioctl(s, SIOCGIFMTU, &ifr) < 0) {
    err = -errno;
  } else {
    *mtu = uint32_t(ifr.ifr_mtu);
    if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0) err = -errno;
    else memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  }
  close(s);
  return err;
}

int modify(const IbvOps* ops, ibv_qp* qp, ibv_qp_state s, uint8_t port) {
  ibv_qp_attr a{};
  a.qp_state = s;
  a.port_num = port;
  int mask = IBV_QP_STATE | (s == IBV_QPS_INIT ? IBV_QP_PORT : 0);
  return ops->modify_qp(qp, &a, mask);
}

// RESET -> INIT (port) -> RTR -> RTS: what a raw packet QP needs (ibv_modify_qp(3)).
int to_rts(const IbvOps* ops, ibv_qp* qp, uint8_t port) {
  for (ibv_qp_state s : {IBV_QPS_INIT, IBV_QPS_RTR, IBV_QPS_RTS})
    if (int err = modify(ops, qp, s, port); err != 0) return -err;
  return 0;
}

}  // namespace

int IbvNetdev::open(const IbvOptions& opt, std::unique_ptr<IbvNetdev>* out, std::string* why) {
  if (opt.ifname.empty() || opt.ifname.size() >= IFNAMSIZ)
    return fail(why, -EINVAL, "bad interface name '" + opt.ifname + "'");
  if (!pow2(opt.rx_bufs) || !pow2(opt.tx_depth) || opt.signal_every == 0 || opt.rx_refill_batch == 0 ||
      opt.rx_refill_batch > opt.rx_bufs)
    return fail(why, -EINVAL, "rx_bufs and tx_depth must be powers of two, signal_every and rx_refill_batch > 0");
  std::unique_ptr<IbvNetdev> d(new IbvNetdev());
  d->ops_ = opt.ops != nullptr ? opt.ops : &ibv_real_ops();
  if (int err = d->setup(opt, why); err < 0) return err;  // the destructor frees what was made
  *out = std::move(d);
  return 0;
}

int IbvNetdev::setup(const IbvOptions& opt, std::string* why) {
  const IbvOps& ops = *ops_;
  ifname_ = opt.ifname;
  signal_every_ = opt.signal_every;
  refill_batch_ = opt.rx_refill_batch;
  max_flows_ = opt.max_flows;
  rx_bufs_ = opt.rx_bufs;
  tx_depth_ = opt.tx_depth;

  std::string step;
  if (int err = ops.netdev_to_ibdev(ifname_.c_str(), &ibdev_, &port_, &step); err < 0) {
    if (why != nullptr) *why = step;
    return err;
  }
  ifindex_ = int(if_nametoindex(ifname_.c_str()));
  if (ifindex_ == 0) return fail(why, -errno, "interface " + ifname_);
  uint32_t mtu = 0;
  if (int err = query_link(ifname_, &mtu, mac_); err < 0)
    return fail(why, err, "SIOCGIFMTU/SIOCGIFHWADDR on " + ifname_);

  int n = 0;
  ibv_device** list = ops.get_device_list(&n);
  if (list == nullptr) return fail(why, -(errno != 0 ? errno : ENODEV), "ibv_get_device_list");
  ibv_device* dev = nullptr;
  for (int i = 0; i < n; ++i)
    if (ibdev_ == ops.get_device_name(list[i])) dev = list[i];
  if (dev != nullptr) ctx_ = ops.open_device(dev);
  int open_errno = errno;
  ops.free_device_list(list);
  if (dev == nullptr)
    return fail(why, -ENODEV, "RDMA device " + ibdev_ + " of " + ifname_ + " is not in ibv_get_device_list() (is its provider library installed?)");
  if (ctx_ == nullptr) return fail(why, -(open_errno != 0 ? open_errno : ENODEV), "ibv_open_device(" + ibdev_ + ")");

  ibv_device_attr_ex attr{};
  if (int err = ops.query_device_ex(ctx_, nullptr, &attr); err != 0)
    return fail(why, -err, "ibv_query_device_ex(" + ibdev_ + ")");
  ibv_port_attr pattr{};
  if (int err = ops.query_port(ctx_, port_, &pattr); err != 0)
    return fail(why, -err, "ibv_query_port(" + ibdev_ + ", " + std::to_string(port_) + ")");
  if (pattr.link_layer != IBV_LINK_LAYER_ETHERNET)
    return fail(why, -EPROTONOSUPPORT, ibdev_ + " port " + std::to_string(port_) + " is not an Ethernet port");

  // Offloads only where the device reports them (ibv_query_device_ex(3): raw_packet_caps,
  // tso_caps); otherwise the stack finishes checksums and segments itself.
  const bool tso = attr.tso_caps.max_tso != 0 && (attr.tso_caps.supported_qpts & (1u << IBV_QPT_RAW_PACKET));
  const bool csum = (attr.raw_packet_caps & IBV_RAW_PACKET_CAP_IP_CSUM) != 0 ||
                    (attr.orig_attr.device_cap_flags & IBV_DEVICE_RAW_IP_CSUM) != 0;
  max_sge_ = std::min<uint32_t>(kMaxSegs, uint32_t(std::max(1, attr.orig_attr.max_sge)));
  features_ = NetdevFeatures{};
  features_.ip_csum = csum;
  features_.l4_csum = csum;
  features_.max_segs = uint16_t(max_sge_);
  features_.mtu = mtu;
  features_.max_frame = std::min(mtu + kEthHlen, kBufSize);
  features_.tso = tso;
  features_.tso_max_size = tso ? std::min<uint32_t>(attr.tso_caps.max_tso, 65536) : 0;

  pd_ = ops.alloc_pd(ctx_);
  if (pd_ == nullptr) return fail(why, -errno, "ibv_alloc_pd");
  mem_len_ = size_t(rx_bufs_ + tx_depth_) * kBufSize;
  void* m = mmap(nullptr, mem_len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (m == MAP_FAILED) {
    mem_len_ = 0;
    return fail(why, -errno, "mmap buffers");
  }
  mem_ = static_cast<uint8_t*>(m);
  mem_mr_ = ops.reg_mr(pd_, mem_, mem_len_, IBV_ACCESS_LOCAL_WRITE);
  if (mem_mr_ == nullptr) return fail(why, -errno, "ibv_reg_mr (buffers; RLIMIT_MEMLOCK?)");
  // One completion channel for both CQs, its fd non-blocking so that taking events never waits.
  // Without one (a device that cannot) the queue still works; wait_fd() is then -1.
  channel_ = ops.create_comp_channel(ctx_);
  if (channel_ != nullptr) {
    int fl = fcntl(channel_->fd, F_GETFL);
    if (fl < 0 || fcntl(channel_->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
      ops.destroy_comp_channel(channel_);
      channel_ = nullptr;
    }
  }
  scq_ = ops.create_cq(ctx_, int(tx_depth_), nullptr, channel_, 0);
  if (scq_ == nullptr) return fail(why, -errno, "ibv_create_cq (send)");
  rcq_ = ops.create_cq(ctx_, int(rx_bufs_), nullptr, channel_, 0);
  if (rcq_ == nullptr) return fail(why, -errno, "ibv_create_cq (receive)");
  if (channel_ != nullptr) {
    if (int err = ops.req_notify_cq(scq_, 0); err != 0) return fail(why, -err, "ibv_req_notify_cq (send)");
    if (int err = ops.req_notify_cq(rcq_, 0); err != 0) return fail(why, -err, "ibv_req_notify_cq (receive)");
  }

  ibv_qp_init_attr qa{};
  qa.send_cq = scq_;
  qa.recv_cq = rcq_;
  qa.qp_type = IBV_QPT_RAW_PACKET;
  qa.cap.max_send_wr = tx_depth_;
  qa.cap.max_recv_wr = rx_bufs_;
  qa.cap.max_send_sge = max_sge_;
  qa.cap.max_recv_sge = 1;
  qa.cap.max_inline_data = opt.inline_max;
  // IBV_WR_TSO needs a QP made by ibv_create_qp_ex() with max_tso_header; without TSO the plain
  // ibv_create_qp() does. A device that allows less inline data than asked gets none.
  auto create = [&]() -> ibv_qp* {
    if (!tso) return ops.create_qp(pd_, &qa);
    ibv_qp_init_attr_ex ax{};
    ax.send_cq = qa.send_cq;
    ax.recv_cq = qa.recv_cq;
    ax.cap = qa.cap;
    ax.qp_type = qa.qp_type;
    ax.comp_mask = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_MAX_TSO_HEADER;
    ax.pd = pd_;
    ax.max_tso_header = kMaxTsoHeader;
    ibv_qp* q = ops.create_qp_ex(ctx_, &ax);
    if (q != nullptr) qa.cap = ax.cap;
    return q;
  };
  qp_ = create();
  if (qp_ == nullptr && errno == EINVAL && opt.inline_max != 0) {
    qa.cap.max_inline_data = 0;
    qp_ = create();
  }
  if (qp_ == nullptr) {
    int err = -errno;
    return fail(why, err, err == -EPERM ? "ibv_create_qp(IBV_QPT_RAW_PACKET) needs CAP_NET_RAW" : "ibv_create_qp(IBV_QPT_RAW_PACKET)");
  }
  // ibv_create_qp(3) reports the queue as created, at least as large as asked; we use what we asked.
  max_inline_ = std::min(qa.cap.max_inline_data, opt.inline_max);
  max_sge_ = std::min(max_sge_, qa.cap.max_send_sge);
  features_.max_segs = uint16_t(max_sge_);
  if (int err = to_rts(&ops, qp_, port_); err < 0) return fail(why, err, "ibv_modify_qp to RTS");

  tx_slots_.assign(tx_depth_, TxSlot{});
  wrs_.assign(kBatch, ibv_send_wr{});
  sges_.assign(size_t(kBatch) * max_sge_, ibv_sge{});
  tso_hdrs_.assign(size_t(kBatch) * kMaxTsoHeader, 0);
  rwrs_.assign(refill_batch_, ibv_recv_wr{});
  rsges_.assign(refill_batch_, ibv_sge{});
  flows_.reserve(max_flows_);
  rx_held_.assign(rx_bufs_, 0);
  rx_free_.reserve(rx_bufs_);
  for (uint32_t i = rx_bufs_; i > 0; --i) rx_free_.push_back(i - 1);
  while (!rx_free_.empty())
    if (int err = post_rx_batch(true); err < 0) return fail(why, err, "ibv_post_recv");
  return 0;
}

IbvNetdev::~IbvNetdev() { destroy(); }

void IbvNetdev::destroy() {
  const IbvOps& ops = *ops_;
  bool drained = true;
  if (qp_ != nullptr && sq_posted_ != sq_retired_) {
    // Sends in flight still read our memory: move the QP to the error state, which completes
    // every outstanding WR with IBV_WC_WR_FLUSH_ERR, and reap until none is left.
    modify(ops_, qp_, IBV_QPS_ERR, port_);
    int polls = 0;
    while (sq_posted_ != sq_retired_ && polls++ < kDrainPolls) poll_tx([](uint64_t) {});
    if (sq_posted_ != sq_retired_) {
      ++stats_.drain_timeouts;
      drained = false;  // the device may still read the memory: leak it rather than free it
    }
  }
  for (auto& f : flows_) ops.destroy_flow(f.second);
  flows_.clear();
  if (qp_ != nullptr) ops.destroy_qp(qp_);
  if (scq_ != nullptr) ops.destroy_cq(scq_);
  if (rcq_ != nullptr) ops.destroy_cq(rcq_);
  if (channel_ != nullptr) ops.destroy_comp_channel(channel_);
  if (drained) {
    for (Region& r : regions_)
      if (r.mr != nullptr) ops.dereg_mr(r.mr);
    if (mem_mr_ != nullptr) ops.dereg_mr(mem_mr_);
    if (pd_ != nullptr) ops.dealloc_pd(pd_);
    if (mem_ != nullptr) munmap(mem_, mem_len_);
  }
  if (ctx_ != nullptr) ops.close_device(ctx_);
  qp_ = nullptr;
  ctx_ = nullptr;
}

int IbvNetdev::register_memory(const void* base, size_t len) {
  const auto* b = static_cast<const uint8_t*>(base);
  Region* slot = nullptr;
  for (Region& r : regions_) {
    if (r.mr != nullptr && r.base == b) return -EEXIST;
    if (r.mr == nullptr && slot == nullptr) slot = &r;
  }
  if (slot == nullptr) return -ENOSPC;
  // The device only reads it (sends): no IBV_ACCESS_LOCAL_WRITE.
  ibv_mr* mr = ops_->reg_mr(pd_, const_cast<uint8_t*>(b), len, 0);
  if (mr == nullptr) return -errno;
  *slot = Region{b, len, mr, 0};
  return 0;
}

int IbvNetdev::unregister_memory(const void* base) {
  for (Region& r : regions_) {
    if (r.mr == nullptr || r.base != base) continue;
    if (r.users != 0) return -EBUSY;  // a posted send still reads it: never pull it from under the device
    if (int err = ops_->dereg_mr(r.mr); err != 0) return -err;
    r = Region{};
    return 0;
  }
  return -ENOENT;
}

int IbvNetdev::find_region(const uint8_t* p, uint32_t len) const {
  for (uint32_t i = 0; i < kMaxRegions; ++i) {
    const Region& r = regions_[i];
    if (r.mr != nullptr && p >= r.base && len <= r.len && size_t(p - r.base) <= r.len - len) return int(i);
  }
  return -1;
}

// Fills send WR `w` (and its sges from sges_[*nsge]) for frame `f` in SQ slot n. 0 or -errno.
int IbvNetdev::build_wr(const TxFrame& f, uint64_t n, uint32_t batch_idx, ibv_send_wr& w, uint32_t* nsge) {
  if (int err = tx_frame_check(f, features_); err < 0) return err;
  const uint32_t len = tx_frame_len(f);
  if (len < kMinFrame) return -EINVAL;
  TxSlot& slot = tx_slots_[n % tx_depth_];
  slot = TxSlot{f.cookie, 0};
  w = ibv_send_wr{};
  w.wr_id = n;
  w.opcode = IBV_WR_SEND;
  w.sg_list = &sges_[*nsge];
  if ((f.flags & (kTxIpCsum | kTxL4Csum)) || ((f.flags & kTxTso) && features_.ip_csum)) w.send_flags |= IBV_SEND_IP_CSUM;

  // The bytes [from, len) of the frame go to the device: in place when every piece lies in a
  // registered region and there are sges enough, else copied into the slot's bounce buffer.
  uint32_t from = 0;
  if (f.flags & kTxTso) {
    // kernel: skb_shinfo()->gso_size with the headers up to the end of the TCP header, which the
    // NIC repeats in every segment (mlx5: the header is copied into the WQE; wr.tso.hdr).
    const uint32_t th = f.csum_start;
    if (th < kEthHlen + 20 || th + 13 > len) return -EINVAL;
    from = th + (byte_at(f.segs, th + 12) >> 4) * 4u;
    if (from < th + 20 || from >= len || from > kMaxTsoHeader) return -EINVAL;
    uint8_t* hdr = &tso_hdrs_[size_t(batch_idx) * kMaxTsoHeader];
    copy_range(f.segs, 0, from, hdr);
    w.opcode = IBV_WR_TSO;
    w.tso.hdr = hdr;
    w.tso.hdr_sz = uint16_t(from);
    w.tso.mss = f.gso_size;
  } else if (len <= max_inline_ && f.segs.size() <= max_sge_) {
    // Inline: the device copies the bytes at post (ibv_post_send(3)); the lkey is not looked at.
    for (const FrameSeg& s : f.segs) sges_[(*nsge)++] = ibv_sge{reinterpret_cast<uint64_t>(s.data), s.len, 0};
    w.num_sge = int(f.segs.size());
    w.send_flags |= IBV_SEND_INLINE;
    ++stats_.tx_inline;
    return 0;
  }
  uint32_t regs = 0;
  uint32_t pieces = 0;
  bool in_place = true;
  uint32_t off = 0;
  for (const FrameSeg& s : f.segs) {
    const uint32_t skip = from > off ? std::min(from - off, s.len) : 0;
    off += s.len;
    if (skip == s.len) continue;
    const int r = find_region(s.data + skip, s.len - skip);
    if (r < 0 || pieces == max_sge_) {
      in_place = false;
      break;
    }
    regs |= 1u << r;
    sges_[*nsge + pieces++] = ibv_sge{reinterpret_cast<uint64_t>(s.data + skip), s.len - skip, regions_[r].mr->lkey};
  }
  if (in_place) {
    *nsge += pieces;
    w.num_sge = int(pieces);
    slot.regions = regs;
    for (uint32_t r = 0; r < kMaxRegions; ++r)
      if (regs & (1u << r)) ++regions_[r].users;
    ++stats_.tx_zero_copy;
    return 0;
  }
  // A bounce slot holds kBufSize bytes: a TSO payload from unregistered memory larger than that
  // cannot go (register the memory it lives in).
  if (len - from > kBufSize) return -EMSGSIZE;
  uint8_t* bounce = mem_ + size_t(rx_bufs_ + n % tx_depth_) * kBufSize;
  copy_range(f.segs, from, len - from, bounce);
  sges_[(*nsge)++] = ibv_sge{reinterpret_cast<uint64_t>(bounce), len - from, mem_mr_->lkey};
  w.num_sge = 1;
  ++stats_.tx_copied;
  return 0;
}

int IbvNetdev::xmit(absl::Span<const TxFrame> frames) {
  maybe_recover();
  if (qp_error_) return 0;  // waiting for flushed sends before the QP can run again
  uint32_t taken = 0;
  int first_err = 0;
  while (taken < frames.size()) {
    uint32_t nwr = 0;
    uint32_t nsge = 0;
    const uint64_t first = sq_posted_;
    while (taken + nwr < frames.size() && nwr < kBatch) {
      const uint64_t n = sq_posted_ + nwr;
      if (n - sq_retired_ >= tx_depth_) {
        ++stats_.tx_full;
        break;
      }
      ibv_send_wr& w = wrs_[nwr];
      if (int err = build_wr(frames[taken + nwr], n, nwr, w, &nsge); err < 0) {
        tx_slots_[n % tx_depth_] = TxSlot{};
        first_err = err;
        break;
      }
      if ((n + 1) % signal_every_ == 0) w.send_flags |= IBV_SEND_SIGNALED;
      if (nwr > 0) wrs_[nwr - 1].next = &w;
      ++nwr;
    }
    if (nwr == 0) break;
    // The last WR of the call is signaled too, so no cookie waits for a send that may never come.
    wrs_[nwr - 1].send_flags |= IBV_SEND_SIGNALED;
    ibv_send_wr* bad = nullptr;
    int err = ops_->post_send(qp_, &wrs_[0], &bad);
    uint32_t posted = nwr;
    if (err != 0) {
      // ibv_post_send(3): WRs before *bad_wr were posted; the rest are ours again. An unsignaled
      // tail of the posted ones is retired by the next signaled WR (the next call's last).
      posted = bad != nullptr ? uint32_t(bad->wr_id - first) : 0;
      for (uint32_t i = posted; i < nwr; ++i) {
        TxSlot& s = tx_slots_[(first + i) % tx_depth_];
        for (uint32_t r = 0; r < kMaxRegions; ++r)
          if (s.regions & (1u << r)) --regions_[r].users;
        s = TxSlot{};
      }
      if (err != ENOMEM && posted == 0 && taken == 0) return -err;
    }
    for (uint32_t i = 0; i < posted; ++i)
      if (wrs_[i].send_flags & IBV_SEND_SIGNALED) ++stats_.tx_signaled;
    sq_posted_ += posted;
    stats_.tx_frames += posted;
    taken += posted;
    if (posted < nwr || first_err != 0 || err != 0) break;
    if (sq_posted_ - sq_retired_ >= tx_depth_) break;
  }
  if (taken == 0 && first_err != 0) return first_err;
  return int(taken);
}

void IbvNetdev::retire_through(uint64_t wr_id, absl::FunctionRef<void(uint64_t)> done, int* reaped) {
  while (sq_retired_ <= wr_id && sq_retired_ < sq_posted_) {
    TxSlot& s = tx_slots_[sq_retired_ % tx_depth_];
    for (uint32_t r = 0; r < kMaxRegions; ++r)
      if (s.regions & (1u << r)) --regions_[r].users;
    const uint64_t cookie = s.cookie;
    s = TxSlot{};
    ++sq_retired_;
    ++*reaped;
    ++stats_.tx_done;
    done(cookie);
  }
}

// ibv_get_cq_event(3)'s loop: take every pending event, acknowledge it and re-arm its CQ before
// the CQ is polled, so a completion after the poll raises a new event.
void IbvNetdev::take_events() {
  if (channel_ == nullptr) return;
  unsigned ns = 0, nr = 0;
  ibv_cq* cq = nullptr;
  void* ctx = nullptr;
  while (ops_->get_cq_event(channel_, &cq, &ctx) == 0) {
    if (cq == scq_) ++ns;
    else if (cq == rcq_) ++nr;
  }
  if (ns != 0) {
    ops_->ack_cq_events(scq_, ns);
    ops_->req_notify_cq(scq_, 0);
  }
  if (nr != 0) {
    ops_->ack_cq_events(rcq_, nr);
    ops_->req_notify_cq(rcq_, 0);
  }
}

int IbvNetdev::poll_tx(absl::FunctionRef<void(uint64_t cookie)> done) {
  take_events();
  int reaped = 0;
  ibv_wc wc[32];
  for (;;) {
    int n = ops_->poll_cq(scq_, 32, wc);
    if (n <= 0) {
      if (n < 0) last_error_ = "ibv_poll_cq (send) failed: the send CQ overran";
      break;
    }
    for (int i = 0; i < n; ++i) {
      if (wc[i].status != IBV_WC_SUCCESS) {
        ++stats_.tx_errors;
        qp_error_ = true;
        if (wc[i].status != IBV_WC_WR_FLUSH_ERR)
          last_error_ = std::string("send completion: ") + ibv_wc_status_str(wc[i].status);
      }
      retire_through(wc[i].wr_id, done, &reaped);
    }
  }
  maybe_recover();
  return reaped;
}

// Brings the QP back to RTS after an error completion, once the device holds no send WR (all
// flushed and reaped): RESET drops the receive WRs, which are posted again.
void IbvNetdev::maybe_recover() {
  if (!qp_error_ || sq_posted_ != sq_retired_) return;
  ibv_wc wc[32];
  int n;
  while ((n = ops_->poll_cq(rcq_, 32, wc)) > 0) {
    for (int i = 0; i < n; ++i) {
      uint32_t b = uint32_t(wc[i].wr_id);
      if (b < rx_bufs_) rx_free_.push_back(b);
      --rx_posted_;
      if (wc[i].status != IBV_WC_SUCCESS) ++stats_.rx_errors;
    }
  }
  if (modify(ops_, qp_, IBV_QPS_RESET, port_) != 0 || to_rts(ops_, qp_, port_) != 0) return;  // stays in error
  // RESET emptied the receive queue without completions: those buffers are free.
  for (uint32_t b = 0; b < rx_bufs_; ++b)
    if (!rx_held_[b] && std::find(rx_free_.begin(), rx_free_.end(), b) == rx_free_.end()) rx_free_.push_back(b);
  rx_posted_ = 0;
  qp_error_ = false;
  ++stats_.qp_recoveries;
  while (!rx_free_.empty())
    if (post_rx_batch(true) < 0) break;
}

// Posts up to refill_batch_ free buffers as one chain of receive WRs; without `force`, only when a
// whole batch is free.
int IbvNetdev::post_rx_batch(bool force) {
  uint32_t n = std::min<uint32_t>(refill_batch_, uint32_t(rx_free_.size()));
  if (n == 0 || (!force && n < refill_batch_)) return 0;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t b = rx_free_[rx_free_.size() - 1 - i];
    rsges_[i] = ibv_sge{reinterpret_cast<uint64_t>(mem_ + size_t(b) * kBufSize), kBufSize, mem_mr_->lkey};
    rwrs_[i] = ibv_recv_wr{.wr_id = b, .next = i + 1 < n ? &rwrs_[i + 1] : nullptr, .sg_list = &rsges_[i], .num_sge = 1};
  }
  ibv_recv_wr* bad = nullptr;
  int err = ops_->post_recv(qp_, &rwrs_[0], &bad);
  uint32_t posted = err == 0 ? n : (bad != nullptr ? uint32_t(bad - &rwrs_[0]) : 0);
  rx_free_.resize(rx_free_.size() - posted);
  rx_posted_ += posted;
  ++stats_.rx_posts;
  return err == 0 ? int(posted) : -err;
}

int IbvNetdev::poll_rx(int budget, absl::FunctionRef<bool(const RxFrame&)> deliver) {
  take_events();
  int delivered = 0;
  ibv_wc wc[32];
  while (delivered < budget) {
    int n = ops_->poll_cq(rcq_, std::min(budget - delivered, 32), wc);
    if (n <= 0) break;
    for (int i = 0; i < n; ++i) {
      uint32_t b = uint32_t(wc[i].wr_id);
      --rx_posted_;
      if (b >= rx_bufs_) continue;
      if (wc[i].status != IBV_WC_SUCCESS) {
        ++stats_.rx_errors;
        if (wc[i].status != IBV_WC_WR_FLUSH_ERR)
          last_error_ = std::string("receive completion: ") + ibv_wc_status_str(wc[i].status);
        qp_error_ = true;
        rx_free_.push_back(b);
        continue;
      }
      rx_held_[b] = 1;
      ++delivered;
      ++stats_.rx_frames;
      RxFrame rf{mem_ + size_t(b) * kBufSize, std::min(wc[i].byte_len, kBufSize), b};
      if (!deliver(rf)) {
        rx_held_[b] = 0;
        rx_free_.push_back(b);
      }
    }
  }
  if (!qp_error_) {
    // Refill in whole batches; when the device is running low, whatever is free.
    while (post_rx_batch(rx_posted_ < refill_batch_) > 0) {
    }
  }
  maybe_recover();
  return delivered;
}

void IbvNetdev::rx_recycle(uint64_t buf_id) {
  if (buf_id >= rx_bufs_ || !rx_held_[buf_id]) return;  // not held: a double recycle is ignored
  rx_held_[buf_id] = 0;
  rx_free_.push_back(uint32_t(buf_id));
  if (!qp_error_) post_rx_batch(rx_posted_ < refill_batch_);
}

int IbvNetdev::steer(const FlowKey& key) {
  for (auto& f : flows_)
    if (f.first == key) return -EEXIST;
  if (flows_.size() >= max_flows_) return -ENOSPC;
  struct {
    ibv_flow_attr attr;
    ibv_flow_spec_eth eth;
    ibv_flow_spec_ipv4 ip;
    ibv_flow_spec_tcp_udp l4;
  } r{};
  static_assert(sizeof r == sizeof(ibv_flow_attr) + sizeof(ibv_flow_spec_eth) + sizeof(ibv_flow_spec_ipv4) +
                                sizeof(ibv_flow_spec_tcp_udp));
  r.attr.type = IBV_FLOW_ATTR_NORMAL;
  r.attr.size = sizeof r;
  r.attr.priority = key.remote_addr != 0 || key.remote_port != 0 ? 0 : 1;
  r.attr.num_of_specs = 3;
  r.attr.port = port_;
  r.eth.type = IBV_FLOW_SPEC_ETH;
  r.eth.size = sizeof r.eth;
  memcpy(r.eth.val.dst_mac, mac_, 6);
  memset(r.eth.mask.dst_mac, 0xff, 6);
  r.eth.val.ether_type = htons(0x0800);
  r.eth.mask.ether_type = 0xffff;
  r.ip.type = IBV_FLOW_SPEC_IPV4;
  r.ip.size = sizeof r.ip;
  r.ip.val.dst_ip = key.local_addr;
  r.ip.mask.dst_ip = key.local_addr != 0 ? 0xffffffffu : 0;
  r.ip.val.src_ip = key.remote_addr;
  r.ip.mask.src_ip = key.remote_addr != 0 ? 0xffffffffu : 0;
  r.l4.type = key.protocol == IPPROTO_TCP ? IBV_FLOW_SPEC_TCP : IBV_FLOW_SPEC_UDP;
  r.l4.size = sizeof r.l4;
  r.l4.val.dst_port = key.local_port;
  r.l4.mask.dst_port = 0xffff;
  r.l4.val.src_port = key.remote_port;
  r.l4.mask.src_port = key.remote_port != 0 ? 0xffff : 0;
  if (key.protocol != IPPROTO_TCP && key.protocol != IPPROTO_UDP) return -EINVAL;
  ibv_flow* f = ops_->create_flow(qp_, &r.attr);
  if (f == nullptr) return errno == ENOMEM ? -ENOSPC : -errno;
  flows_.emplace_back(key, f);
  return 0;
}

int IbvNetdev::unsteer(const FlowKey& key) {
  for (size_t i = 0; i < flows_.size(); ++i) {
    if (!(flows_[i].first == key)) continue;
    if (int err = ops_->destroy_flow(flows_[i].second); err != 0) return -err;
    flows_[i] = flows_.back();
    flows_.pop_back();
    return 0;
  }
  return -ENOENT;
}

}  // namespace xmit::ibv
