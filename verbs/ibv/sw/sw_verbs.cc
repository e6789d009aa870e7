// verbs/ibv/sw/sw_verbs.cc — the software device's registry and control plane: devices, contexts,
// PD, MR, CQ (with poll_cq), and the ibv_sw_ops() table. QPs and the data path: sw_qp.cc.
// Behaviour follows the man pages ibv_reg_mr(3), ibv_create_cq(3), ibv_poll_cq(3) and what
// rdma-core's mlx5 provider and the kernel's uverbs/rxe do where the pages are silent.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>

#include "verbs/ibv/ibv_ops.h"
#include "verbs/ibv/sw/sw_internal.h"

namespace xmit::ibv::sw {

std::mutex g_mu;
namespace {

std::vector<std::unique_ptr<SwDev>>& devices() {
  static auto* v = new std::vector<std::unique_ptr<SwDev>>();  // never freed: used at exit
  return *v;
}

SwDev* find_dev(const std::string& name) {
  for (auto& d : devices())
    if (d->cfg.name == name) return d.get();
  return nullptr;
}

void free_channel_locked(SwChannel* ch);

uint32_t roundup_pow2(uint32_t v) {
  uint32_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

// ---- devices and contexts -------------------------------------------------------------------

int sw_netdev_to_ibdev(const char* ifname, std::string* ibdev, uint8_t* port, std::string* why) {
  std::lock_guard<std::mutex> g(g_mu);
  for (auto& d : devices()) {
    if (d->cfg.ifname == ifname) {
      *ibdev = d->cfg.name;
      *port = 1;
      return 0;
    }
  }
  if (why != nullptr) *why = std::string("no software verbs device is bound to ") + ifname;
  return -ENODEV;
}

// ibv_get_device_list(3): a NULL-terminated array, freed by ibv_free_device_list().
ibv_device** sw_get_device_list(int* num) {
  std::lock_guard<std::mutex> g(g_mu);
  auto** list = static_cast<ibv_device**>(calloc(devices().size() + 1, sizeof(ibv_device*)));
  if (list == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  size_t i = 0;
  for (auto& d : devices()) list[i++] = &d->dev;
  if (num != nullptr) *num = int(i);
  return list;
}

void sw_free_device_list(ibv_device** list) { free(list); }

const char* sw_get_device_name(ibv_device* dev) { return dev->name; }

ibv_context* sw_open_device(ibv_device* device) {
  std::lock_guard<std::mutex> g(g_mu);
  SwDev* d = reinterpret_cast<SwDev*>(device);  // ibv_device is SwDev's first member
  auto* c = new (std::nothrow) SwCtx();
  if (c == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  c->dev = d;
  c->ctx.device = device;
  c->ctx.cmd_fd = -1;
  c->ctx.async_fd = -1;
  c->ctx.num_comp_vectors = 1;
  // The legacy ops verbs.h's inline ibv_post_send()/ibv_post_recv()/ibv_poll_cq() jump through.
  c->ctx.ops.poll_cq = sw_poll_cq;
  c->ctx.ops.post_send = sw_post_send;
  c->ctx.ops.post_recv = sw_post_recv;
  ++d->open_contexts;
  ++d->st.open_contexts;
  return &c->ctx;
}

// The kernel destroys whatever the context still owns when its file closes (uverbs_destroy_ufile_hw());
// so does this.
int sw_close_device(ibv_context* context) {
  std::lock_guard<std::mutex> g(g_mu);
  SwCtx* c = to_ctx(context);
  SwDev* d = c->dev;
  while (true) {
    auto it = std::find_if(d->flows.begin(), d->flows.end(), [&](SwFlow* f) { return f->qp->c == c; });
    if (it == d->flows.end()) break;
    destroy_flow_locked(*it);
  }
  while (true) {
    auto it = std::find_if(d->qps.begin(), d->qps.end(), [&](SwQp* q) { return q->c == c; });
    if (it == d->qps.end()) break;
    destroy_qp_locked(*it);
  }
  while (true) {
    auto it = std::find_if(d->mrs.begin(), d->mrs.end(), [&](SwMr* m) { return m->pd->c == c; });
    if (it == d->mrs.end()) break;
    --(*it)->pd->users;
    delete *it;
    d->mrs.erase(it);
    --d->st.live_objects;
  }
  while (true) {
    auto it = std::find_if(d->channels.begin(), d->channels.end(),
                           [&](SwChannel* ch) { return ch->c == c && ch->ch.refcnt == 0; });
    if (it == d->channels.end()) break;
    free_channel_locked(*it);
  }
  // PDs and CQs (and channels CQs still use) are not listed per device: the caller frees them
  // first, as the backend does; anything left is counted in live_objects and leaks.
  --d->open_contexts;
  --d->st.open_contexts;
  if (d->open_contexts == 0 && d->pkt_fd >= 0) {
    close(d->pkt_fd);
    d->pkt_fd = -1;
    d->divert.reset();
    d->st.divert_active = 0;
  }
  delete c;
  return 0;
}

int sw_query_device_ex(ibv_context* context, const ibv_query_device_ex_input* input, ibv_device_attr_ex* a) {
  if (input != nullptr && input->comp_mask != 0) return EINVAL;
  std::lock_guard<std::mutex> g(g_mu);
  const SwDeviceConfig& cfg = to_ctx(context)->dev->cfg;
  *a = ibv_device_attr_ex{};
  snprintf(a->orig_attr.fw_ver, sizeof a->orig_attr.fw_ver, "xmit-sw");
  a->orig_attr.max_qp = 1024;
  a->orig_attr.max_qp_wr = int(cfg.max_qp_wr);
  a->orig_attr.max_sge = int(cfg.max_sge);
  a->orig_attr.max_cq = 1024;
  a->orig_attr.max_cqe = int(cfg.max_cqe);
  a->orig_attr.max_mr = 1024;
  a->orig_attr.max_pd = 1024;
  a->orig_attr.max_mr_size = ~uint64_t(0);
  a->orig_attr.phys_port_cnt = 1;
  a->orig_attr.device_cap_flags = IBV_DEVICE_MANAGED_FLOW_STEERING | (cfg.ip_csum ? IBV_DEVICE_RAW_IP_CSUM : 0);
  a->raw_packet_caps = cfg.ip_csum ? IBV_RAW_PACKET_CAP_IP_CSUM : 0;
  a->tso_caps.max_tso = cfg.max_tso;
  a->tso_caps.supported_qpts = cfg.max_tso != 0 ? 1u << IBV_QPT_RAW_PACKET : 0;
  a->phys_port_cnt_ex = 1;
  return 0;
}

ibv_mtu mtu_enum(uint32_t mtu) {
  if (mtu >= 4096) return IBV_MTU_4096;
  if (mtu >= 2048) return IBV_MTU_2048;
  if (mtu >= 1024) return IBV_MTU_1024;
  if (mtu >= 512) return IBV_MTU_512;
  return IBV_MTU_256;
}

int sw_query_port(ibv_context* context, uint8_t port, ibv_port_attr* a) {
  if (port != 1) return EINVAL;
  std::lock_guard<std::mutex> g(g_mu);
  SwDev* d = to_ctx(context)->dev;
  *a = ibv_port_attr{};
  a->state = IBV_PORT_ACTIVE;
  a->max_mtu = IBV_MTU_4096;
  a->active_mtu = mtu_enum(d->mtu);
  a->gid_tbl_len = 1;
  a->max_msg_sz = 1u << 30;
  a->phys_state = 5;  // LinkUp
  a->link_layer = IBV_LINK_LAYER_ETHERNET;
  return 0;
}

// ---- PD and MR --------------------------------------------------------------------------------

ibv_pd* sw_alloc_pd(ibv_context* context) {
  std::lock_guard<std::mutex> g(g_mu);
  auto* p = new (std::nothrow) SwPd();
  if (p == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  p->c = to_ctx(context);
  p->pd.context = context;
  p->pd.handle = p->c->dev->next_key++;
  ++p->c->dev->st.live_objects;
  return &p->pd;
}

// The kernel refuses to free a PD that MRs or QPs still use (uverbs: EBUSY).
int sw_dealloc_pd(ibv_pd* pd) {
  std::lock_guard<std::mutex> g(g_mu);
  SwPd* p = to_pd(pd);
  if (p->users != 0) return EBUSY;
  --p->c->dev->st.live_objects;
  delete p;
  return 0;
}

// ibv_reg_mr(3): "If IBV_ACCESS_REMOTE_WRITE or IBV_ACCESS_REMOTE_ATOMIC is set, then
// IBV_ACCESS_LOCAL_WRITE must be set too." Zero length or a null address: EINVAL.
ibv_mr* sw_reg_mr(ibv_pd* pd, void* addr, size_t length, int access) {
  std::lock_guard<std::mutex> g(g_mu);
  const int known = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
                    IBV_ACCESS_REMOTE_ATOMIC | IBV_ACCESS_RELAXED_ORDERING;
  if (addr == nullptr || length == 0 || (access & ~known) != 0 ||
      ((access & (IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC)) && !(access & IBV_ACCESS_LOCAL_WRITE))) {
    errno = EINVAL;
    return nullptr;
  }
  SwPd* p = to_pd(pd);
  auto* m = new (std::nothrow) SwMr();
  if (m == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  SwDev* d = p->c->dev;
  m->pd = p;
  m->access = access;
  m->mr.context = pd->context;
  m->mr.pd = pd;
  m->mr.addr = addr;
  m->mr.length = length;
  m->mr.handle = d->next_key;
  m->mr.lkey = d->next_key;
  m->mr.rkey = d->next_key;
  ++d->next_key;
  ++p->users;
  d->mrs.push_back(m);
  ++d->st.live_objects;
  return &m->mr;
}

// Succeeds even while a posted send still reads the region, as on hardware (the kernel
// invalidates the key; the WR then fails with a protection error or reads freed memory). Whoever
// posts must not do it: dereg_in_flight counts the times it happened.
int sw_dereg_mr(ibv_mr* mr) {
  std::lock_guard<std::mutex> g(g_mu);
  SwMr* m = to_mr(mr);
  SwDev* d = m->pd->c->dev;
  if (sq_references_lkey(d, mr->lkey)) ++d->st.dereg_in_flight;
  --m->pd->users;
  d->mrs.erase(std::find(d->mrs.begin(), d->mrs.end(), m));
  --d->st.live_objects;
  delete m;
  return 0;
}

// ---- completion channels ----------------------------------------------------------------------

ibv_comp_channel* sw_create_comp_channel(ibv_context* context) {
  std::lock_guard<std::mutex> g(g_mu);
  SwCtx* c = to_ctx(context);
  SwDev* d = c->dev;
  auto ch = std::make_unique<SwChannel>();
  ch->c = c;
  ch->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ch->efd < 0 || ep < 0) {
    int err = errno;
    if (ch->efd >= 0) close(ch->efd);
    if (ep >= 0) close(ep);
    errno = err;
    return nullptr;
  }
  ch->ch.context = context;
  ch->ch.fd = ep;
  channel_watch_arrivals(ch.get(), ch->efd);
  int arrivals = d->cfg.carrier == SwCarrier::kMemory ? d->wire.arrival_fd : d->pkt_fd;
  if (arrivals >= 0) channel_watch_arrivals(ch.get(), arrivals);
  d->channels.push_back(ch.get());
  ++d->st.live_objects;
  return &ch.release()->ch;
}

void free_channel_locked(SwChannel* ch) {
  SwDev* d = ch->c->dev;
  close(ch->ch.fd);
  close(ch->efd);
  d->channels.erase(std::find(d->channels.begin(), d->channels.end(), ch));
  --d->st.live_objects;
  delete ch;
}

// rdma-core: EBUSY while CQs still use the channel (ibv_destroy_comp_channel(), channel->refcnt).
int sw_destroy_comp_channel(ibv_comp_channel* channel) {
  std::lock_guard<std::mutex> g(g_mu);
  auto* ch = reinterpret_cast<SwChannel*>(channel);
  if (channel->refcnt != 0) return EBUSY;
  free_channel_locked(ch);
  return 0;
}

// ibv_req_notify_cq(3): the next completion on the CQ makes an event on its channel.
int sw_req_notify_cq(ibv_cq* cq, int /*solicited_only: every completion here*/) {
  std::lock_guard<std::mutex> g(g_mu);
  to_cq(cq)->armed = true;
  return 0;
}

// ibv_get_cq_event(3) on a non-blocking channel: lets the device take in what the carrier holds,
// then one event, or -1 with errno EAGAIN. (This device's channel never blocks.)
int sw_get_cq_event(ibv_comp_channel* channel, ibv_cq** cq, void** cq_context) {
  std::lock_guard<std::mutex> g(g_mu);
  auto* ch = reinterpret_cast<SwChannel*>(channel);
  pump_rx(ch->c->dev, 64);
  if (ch->events.empty()) {
    errno = EAGAIN;
    return -1;
  }
  *cq = ch->events.front();
  ch->events.erase(ch->events.begin());
  *cq_context = (*cq)->cq_context;
  if (ch->events.empty()) {
    uint64_t v;
    (void)!read(ch->efd, &v, sizeof v);
  }
  return 0;
}

void sw_ack_cq_events(ibv_cq* cq, unsigned int n) {
  std::lock_guard<std::mutex> g(g_mu);
  cq->comp_events_completed += n;
}

// ---- CQ ---------------------------------------------------------------------------------------

// ibv_create_cq(3): cqe is the minimum; the CQ may be larger and cq->cqe says how large.
// Sized as mlx5 does (align_queue_size(cqe + 1) - 1). cqe < 1 or > max_cqe: EINVAL.
ibv_cq* sw_create_cq(ibv_context* context, int cqe, void* cq_context, ibv_comp_channel* channel, int vec) {
  std::lock_guard<std::mutex> g(g_mu);
  SwCtx* c = to_ctx(context);
  if (cqe < 1 || uint32_t(cqe) > c->dev->cfg.max_cqe || vec != 0 ||
      (channel != nullptr && channel->context != context)) {
    errno = EINVAL;
    return nullptr;
  }
  auto* q = new (std::nothrow) SwCq();
  if (q == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  uint32_t n = roundup_pow2(uint32_t(cqe) + 1) - 1;
  q->c = c;
  q->ring.resize(n);
  q->cq.context = context;
  q->cq.cq_context = cq_context;
  q->cq.cqe = int(n);
  q->cq.channel = channel;
  if (channel != nullptr) {
    q->channel = reinterpret_cast<SwChannel*>(channel);
    ++channel->refcnt;
  }
  ++c->dev->st.live_objects;
  return &q->cq;
}

int sw_destroy_cq(ibv_cq* cq) {
  std::lock_guard<std::mutex> g(g_mu);
  SwCq* q = to_cq(cq);
  if (q->users != 0) return EBUSY;
  if (q->channel != nullptr) {
    auto& ev = q->channel->events;
    ev.erase(std::remove(ev.begin(), ev.end(), cq), ev.end());
    --q->channel->ch.refcnt;
  }
  --q->c->dev->st.live_objects;
  delete q;
  return 0;
}

}  // namespace

// ---- completions ------------------------------------------------------------------------------

bool cq_push(SwCq* q, const SwCqe& e) {
  SwDev* d = q->c->dev;
  if (q->overrun) return false;
  if (q->count == q->ring.size()) {
    // CQ overrun: hardware raises IBV_EVENT_CQ_ERR and stops the CQ; the completion is lost.
    q->overrun = true;
    ++d->st.cq_overruns;
    return false;
  }
  q->ring[(q->head + q->count) % q->ring.size()] = e;
  ++q->count;
  if (q->armed && q->channel != nullptr) {  // one event per arming (ibv_req_notify_cq(3))
    q->armed = false;
    q->channel->events.push_back(&q->cq);
    uint64_t one = 1;
    (void)!write(q->channel->efd, &one, sizeof one);
  }
  return true;
}

// ibv_poll_cq(3): completions in the order the work queues produced them; polling a send
// completion retires its WR and every unsignaled WR before it (their slots are free again:
// mlx5 advances sq.tail in mlx5_poll_one()); a receive completion retires its receive WR.
// Returns the count, or -1 (errno EOVERFLOW) once an overrun CQ has been drained.
int sw_poll_cq(ibv_cq* cq, int num_entries, ibv_wc* wc) {
  std::lock_guard<std::mutex> g(g_mu);
  SwCq* q = to_cq(cq);
  pump_rx(q->c->dev, 64);
  int n = 0;
  while (n < num_entries && q->count != 0) {
    SwCqe& e = q->ring[q->head];
    wc[n++] = e.wc;
    if (e.send) e.qp->sq_tail = e.wq_index + 1;
    else e.qp->rq_tail = e.wq_index + 1;
    q->head = uint32_t((q->head + 1) % q->ring.size());
    --q->count;
  }
  if (n == 0 && q->overrun) {
    errno = EOVERFLOW;
    return -1;
  }
  return n;
}

// Drops the completions of a QP being destroyed (mlx5: __mlx5_cq_clean()).
void cq_clean(SwCq* q, SwQp* qp) {
  std::vector<SwCqe> keep;
  keep.reserve(q->count);
  for (uint32_t i = 0; i < q->count; ++i) {
    const SwCqe& e = q->ring[(q->head + i) % q->ring.size()];
    if (e.qp != qp) keep.push_back(e);
  }
  q->head = 0;
  q->count = uint32_t(keep.size());
  std::copy(keep.begin(), keep.end(), q->ring.begin());
}

void channel_watch_arrivals(SwChannel* ch, int fd) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  (void)epoll_ctl(ch->ch.fd, EPOLL_CTL_ADD, fd, &ev);
}

void SwMemWire::inject(const uint8_t* frame, uint32_t len) {
  inbound.emplace_back(frame, frame + len);
  uint64_t one = 1;
  if (arrival_fd >= 0) (void)!write(arrival_fd, &one, sizeof one);
}

SwMr* find_mr(SwDev* d, SwPd* pd, uint32_t lkey) {
  for (SwMr* m : d->mrs)
    if (m->mr.lkey == lkey && m->pd == pd) return m;
  return nullptr;
}

namespace {
const IbvOps kSw = {
    .name = "software",
    .netdev_to_ibdev = sw_netdev_to_ibdev,
    .get_device_list = sw_get_device_list,
    .free_device_list = sw_free_device_list,
    .get_device_name = sw_get_device_name,
    .open_device = sw_open_device,
    .close_device = sw_close_device,
    .query_device_ex = sw_query_device_ex,
    .query_port = sw_query_port,
    .alloc_pd = sw_alloc_pd,
    .dealloc_pd = sw_dealloc_pd,
    .reg_mr = sw_reg_mr,
    .dereg_mr = sw_dereg_mr,
    .create_cq = sw_create_cq,
    .destroy_cq = sw_destroy_cq,
    .create_comp_channel = sw_create_comp_channel,
    .destroy_comp_channel = sw_destroy_comp_channel,
    .req_notify_cq = sw_req_notify_cq,
    .get_cq_event = sw_get_cq_event,
    .ack_cq_events = sw_ack_cq_events,
    .create_qp = sw_create_qp,
    .create_qp_ex = sw_create_qp_ex,
    .modify_qp = sw_modify_qp,
    .destroy_qp = sw_destroy_qp,
    .post_send = sw_post_send,
    .post_recv = sw_post_recv,
    .poll_cq = sw_poll_cq,
    .create_flow = sw_create_flow,
    .destroy_flow = sw_destroy_flow,
};
}  // namespace

// ---- the control panel (sw_verbs.h) -----------------------------------------------------------

int sw_add_device(const SwDeviceConfig& cfg) {
  std::lock_guard<std::mutex> g(g_mu);
  if (cfg.name.empty() || cfg.name.size() >= IBV_SYSFS_NAME_MAX || cfg.ifname.empty() || cfg.max_tso > 65536)
    return -EINVAL;
  if (find_dev(cfg.name) != nullptr) return -EEXIST;
  auto d = std::make_unique<SwDev>();
  d->cfg = cfg;
  d->mtu = cfg.mtu;
  d->dev.node_type = IBV_NODE_CA;
  d->dev.transport_type = IBV_TRANSPORT_IB;
  snprintf(d->dev.name, sizeof d->dev.name, "%s", cfg.name.c_str());
  snprintf(d->dev.dev_name, sizeof d->dev.dev_name, "sw_%s", cfg.name.c_str());
  d->scratch.resize(65536 + 4096);
  if (cfg.carrier == SwCarrier::kMemory) {
    d->wire.arrival_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (d->wire.arrival_fd < 0) return -errno;
  }
  d->seg_scratch.resize(kTsoBatchBytes);
  d->seg_batch.reserve(kTsoBatchFrames);
  d->tso_hdr.resize(kMaxTsoHeader);
  d->tso_segs.resize(size_t(cfg.max_sge) + 1);
  devices().push_back(std::move(d));
  return 0;
}

int sw_attach_interface(const std::string& ifname, bool offloads, std::string* name) {
  SwDeviceConfig cfg;
  cfg.name = "xmit_sw_" + ifname;
  cfg.ifname = ifname;
  cfg.carrier = SwCarrier::kPacket;
  cfg.ip_csum = offloads;
  cfg.max_tso = offloads ? 65536 : 0;
  int err = sw_add_device(cfg);
  if (err == -EEXIST) err = 0;
  if (err == 0 && name != nullptr) *name = cfg.name;
  return err;
}

namespace {
void for_each_fd_locked(absl::FunctionRef<void(int fd)> f) {
  for (auto& d : devices()) {
    if (d->wire.arrival_fd >= 0) f(d->wire.arrival_fd);
    if (d->pkt_fd >= 0) f(d->pkt_fd);
    if (d->divert != nullptr) d->divert->for_each_fd(f);
    for (SwChannel* ch : d->channels) {
      f(ch->ch.fd);
      f(ch->efd);
    }
  }
}
}  // namespace

void sw_for_each_fd(absl::FunctionRef<void(int fd)> f) {
  std::lock_guard<std::mutex> g(g_mu);
  for_each_fd_locked(f);
}

void sw_forget_after_fork(absl::FunctionRef<void(int fd)> close_fd) {
  new (&g_mu) std::mutex();  // the parent's state of the lock means nothing here
  for_each_fd_locked(close_fd);
  for (auto& d : devices()) {
    (void)d->divert.release();  // abandoned with the rest of the parent's objects
    (void)d.release();
  }
  devices().clear();
}

int sw_remove_all_devices() {
  std::lock_guard<std::mutex> g(g_mu);
  for (auto& d : devices())
    if (d->open_contexts != 0) return -EBUSY;
  for (auto& d : devices())
    if (d->wire.arrival_fd >= 0) close(d->wire.arrival_fd);
  devices().clear();
  return 0;
}

SwMemWire* sw_mem_wire(const std::string& name) {
  std::lock_guard<std::mutex> g(g_mu);
  SwDev* d = find_dev(name);
  return d != nullptr && d->cfg.carrier == SwCarrier::kMemory ? &d->wire : nullptr;
}

void sw_hold(const std::string& name, bool hold) {
  std::lock_guard<std::mutex> g(g_mu);
  SwDev* d = find_dev(name);
  if (d == nullptr) return;
  d->hold = hold;
  if (!hold)
    for (SwQp* q : d->qps) execute_sends(q);
}

void sw_fail_next_send(const std::string& name, int status) {
  std::lock_guard<std::mutex> g(g_mu);
  if (SwDev* d = find_dev(name)) d->fail_next_send = status;
}

SwStats sw_stats(const std::string& name) {
  std::lock_guard<std::mutex> g(g_mu);
  SwDev* d = find_dev(name);
  return d != nullptr ? d->st : SwStats{};
}

}  // namespace xmit::ibv::sw

namespace xmit::ibv {
const IbvOps& ibv_sw_ops() { return sw::kSw; }
}  // namespace xmit::ibv
