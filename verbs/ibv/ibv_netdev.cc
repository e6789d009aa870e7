// verbs/ibv/ibv_netdev.cc — IbvNetdev's control plane: bring-up (device, PD, MR, completion channel,
// CQs, raw-packet QP to RTS, RX ring), teardown, memory registration and flow rules.
// The data path is in ibv_netdev_data.cc.
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

#include "stack/dev/link_query.h"
#include "verbs/ibv/sw/sw_verbs.h"

namespace xmit::ibv {
namespace {

constexpr uint32_t kEthHlen = 14;
constexpr int kDrainPolls = 100000;  // destructor: CQ polls waiting for flushed sends, then give up

int fail(std::string* why, int err, const std::string& what) {
  if (why != nullptr) *why = what + ": " + strerror(-err);
  return err;
}

bool pow2(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace

int IbvNetdev::qp_modify(const IbvOps* ops, ibv_qp* qp, ibv_qp_state s, uint8_t port) {
  ibv_qp_attr a{};
  a.qp_state = s;
  a.port_num = port;
  int mask = IBV_QP_STATE | (s == IBV_QPS_INIT ? IBV_QP_PORT : 0);
  return ops->modify_qp(qp, &a, mask);
}

// RESET -> INIT (port) -> RTR -> RTS: what a raw packet QP needs (ibv_modify_qp(3)).
int IbvNetdev::qp_to_rts(const IbvOps* ops, ibv_qp* qp, uint8_t port) {
  for (ibv_qp_state s : {IBV_QPS_INIT, IBV_QPS_RTR, IBV_QPS_RTS})
    if (int err = qp_modify(ops, qp, s, port); err != 0) return -err;
  return 0;
}

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
    return fail(why, -ENODEV, "RDMA device " + ibdev_ + " of " + ifname_ +
                                   " is not in ibv_get_device_list() (is its provider library installed?)");
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
  // A received frame must fit one receive buffer: buffers grow with a jumbo MTU (a frame, with a
  // VLAN tag, in a power of two); past kMaxBufSize the stack keeps to what one holds, so TCP
  // advertises an MSS its peers' segments fit in.
  link_mtu_ = mtu;
  while (buf_size_ < mtu + kEthHlen + 4 && buf_size_ < kMaxBufSize) buf_size_ *= 2;
  features_.mtu = std::min(mtu, buf_size_ - kEthHlen);
  features_.max_frame = features_.mtu + kEthHlen;
  features_.tso = tso;
  features_.tso_max_size = tso ? std::min<uint32_t>(attr.tso_caps.max_tso, 65536) : 0;
  features_.sg_user = true;  // user pages are registered (mr_cache_), as a NIC's driver maps them

  pd_ = ops.alloc_pd(ctx_);
  if (pd_ == nullptr) return fail(why, -errno, "ibv_alloc_pd");
  // A copied TSO payload over 4 KiB needs a bounce buffer of its own (a zerocopy frame whose pages
  // could not be registered must still leave: kernel: skb_copy_ubufs()).
  const uint32_t tso_bounce = tso ? std::min<uint32_t>(opt.tso_bounce, INT16_MAX) : 0;
  mem_len_ = size_t(rx_bufs_ + tx_depth_) * buf_size_ + size_t(tso_bounce) * kTsoBounceSize;
  void* m = mmap(nullptr, mem_len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (m == MAP_FAILED) {
    mem_len_ = 0;
    return fail(why, -errno, "mmap buffers");
  }
  mem_ = static_cast<uint8_t*>(m);
  tso_bounce_mem_ = mem_ + size_t(rx_bufs_ + tx_depth_) * buf_size_;
  tso_bounce_free_.reserve(tso_bounce);
  for (uint32_t i = tso_bounce; i-- > 0;) tso_bounce_free_.push_back(int16_t(i));
  mem_mr_ = ops.reg_mr(pd_, mem_, mem_len_, IBV_ACCESS_LOCAL_WRITE);
  if (mem_mr_ == nullptr) return fail(why, -errno, "ibv_reg_mr (buffers; RLIMIT_MEMLOCK?)");
  mr_cache_ = std::make_unique<MrCache>(ops_, pd_, opt.mr_cache_entries);
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
    return fail(why, err,
                err == -EPERM ? "ibv_create_qp(IBV_QPT_RAW_PACKET) needs CAP_NET_RAW" : "ibv_create_qp(IBV_QPT_RAW_PACKET)");
  }
  // ibv_create_qp(3) reports the queue as created, at least as large as asked; we use what we asked.
  max_inline_ = std::min(qa.cap.max_inline_data, opt.inline_max);
  max_sge_ = std::min(max_sge_, qa.cap.max_send_sge);
  features_.max_segs = uint16_t(max_sge_);
  if (int err = qp_to_rts(&ops, qp_, port_); err < 0) return fail(why, err, "ibv_modify_qp to RTS");

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

void IbvNetdev::for_each_fd(absl::FunctionRef<void(int fd)> f) const {
  if (ops_ == &ibv_sw_ops()) {
    sw::sw_for_each_fd(f);
    return;
  }
  if (ctx_ != nullptr && ctx_->cmd_fd >= 0) f(ctx_->cmd_fd);
  if (ctx_ != nullptr && ctx_->async_fd >= 0) f(ctx_->async_fd);
  if (channel_ != nullptr && channel_->fd >= 0) f(channel_->fd);
}

void IbvNetdev::abandon_after_fork(absl::FunctionRef<void(int fd)> close_fd) {
  if (ops_ == &ibv_sw_ops()) {
    sw::sw_forget_after_fork(close_fd);
  } else {
    for_each_fd(close_fd);
  }
  ctx_ = nullptr;
  pd_ = nullptr;
  channel_ = nullptr;
  scq_ = rcq_ = nullptr;
  qp_ = nullptr;
  mem_ = nullptr;
  mem_mr_ = nullptr;
  (void)mr_cache_.release();  // the parent's registrations: never deregistered from the child
  flows_.clear();
}

void IbvNetdev::destroy() {
  const IbvOps& ops = *ops_;
  bool drained = true;
  if (qp_ != nullptr && sq_posted_ != sq_retired_) {
    // Sends in flight still read our memory: move the QP to the error state, which completes
    // every outstanding WR with IBV_WC_WR_FLUSH_ERR, and reap until none is left.
    qp_modify(ops_, qp_, IBV_QPS_ERR, port_);
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
    mr_cache_.reset();
    for (Region& r : regions_)
      if (r.mr != nullptr) ops.dereg_mr(r.mr);
    if (mem_mr_ != nullptr) ops.dereg_mr(mem_mr_);
    if (pd_ != nullptr) ops.dealloc_pd(pd_);
    if (mem_ != nullptr) munmap(mem_, mem_len_);
  }
  if (!drained) (void)mr_cache_.release();  // the device may still read them: leaked, as mem_
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
