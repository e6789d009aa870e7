// verbs/ibv/sw/sw_qp.cc — the software device's IBV_QPT_RAW_PACKET queue pairs: the state machine,
// post_send/post_recv with the providers' errnos, executing sends onto the carrier, landing
// received frames in receive WRs through the flow rules, and error/flush completions.
// References: ibv_modify_qp(3), ibv_post_send(3), ibv_post_recv(3); the kernel's
// ib_modify_qp_is_ok() (drivers/infiniband/core/verbs.c) for the transitions; rdma-core mlx5
// _mlx5_post_send()/mlx5_post_recv() for the errnos; rxe_post_send() for the state checks.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "stack/base/byteorder.h"
#include "stack/dev/sw_offload.h"
#include "verbs/ibv/sw/sw_internal.h"

namespace xmit::ibv::sw {
namespace {

// mlx5 CQE syndromes (providers/mlx5/mlx5dv.h MLX5_CQE_SYNDROME_*), reported as vendor_err.
constexpr uint32_t kSyndLocalLength = 0x01, kSyndLocalProt = 0x04, kSyndFlush = 0x05;
constexpr uint32_t kEthHlen = 14;
constexpr uint32_t kMinEthSend = 18;  // mlx5: MLX5_ETH_L2_INLINE_HEADER_SIZE
constexpr size_t kKernelQueueMax = 1024;  // in-memory "kernel" frames kept for tests to read

uint32_t roundup_pow2(uint32_t v) {
  uint32_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

SwCqe make_cqe(SwQp* q, bool send, uint32_t idx, uint64_t wr_id, ibv_wc_status st, uint32_t byte_len) {
  SwCqe e;
  e.qp = q;
  e.send = send;
  e.wq_index = idx;
  e.wc.wr_id = wr_id;
  e.wc.status = st;
  e.wc.opcode = send ? IBV_WC_SEND : IBV_WC_RECV;
  e.wc.vendor_err = st == IBV_WC_SUCCESS         ? 0
                    : st == IBV_WC_LOC_PROT_ERR ? kSyndLocalProt
                    : st == IBV_WC_LOC_LEN_ERR  ? kSyndLocalLength
                                                : kSyndFlush;
  e.wc.byte_len = byte_len;
  e.wc.qp_num = q->qp.qp_num;
  return e;
}

// Every WR still outstanding completes with IBV_WC_WR_FLUSH_ERR, signaled or not (IBTA: a WR
// completed in error always generates a completion).
void flush_qp(SwQp* q) {
  SwDev* d = q->c->dev;
  for (; q->sq_proc != q->sq_head; ++q->sq_proc) {
    const SwSendWqe& w = q->sq[q->sq_proc % q->sq.size()];
    cq_push(q->scq, make_cqe(q, true, q->sq_proc, w.wr_id, IBV_WC_WR_FLUSH_ERR, 0));
    ++d->st.flushed;
  }
  for (; q->rq_next != q->rq_head; ++q->rq_next) {
    const SwRecvWqe& w = q->rq[q->rq_next % q->rq.size()];
    cq_push(q->rcq, make_cqe(q, false, q->rq_next, w.wr_id, IBV_WC_WR_FLUSH_ERR, 0));
    ++d->st.flushed;
  }
}

void to_error(SwQp* q) {
  q->qp.state = IBV_QPS_ERR;
  flush_qp(q);
}

bool mr_covers(const SwMr* m, uint64_t addr, uint64_t len) {
  const uint64_t base = reinterpret_cast<uint64_t>(m->mr.addr);
  return addr >= base && len <= m->mr.length && addr - base <= m->mr.length - len;
}

// Gathers one IBV_WR_SEND into the device's scratch buffer: its status and, when fine, the length.
ibv_wc_status gather(SwQp* q, const SwSendWqe& w, uint32_t* len) {
  SwDev* d = q->c->dev;
  uint8_t* out = d->scratch.data();
  const uint32_t cap = uint32_t(d->scratch.size());
  uint32_t total = 0;
  if (w.send_flags & IBV_SEND_INLINE) {
    memcpy(out, w.inl.data(), w.inl_len);
    total = w.inl_len;
  } else {
    for (int i = 0; i < w.num_sge; ++i) {
      const ibv_sge& s = w.sge[size_t(i)];
      const SwMr* m = find_mr(d, q->pd, s.lkey);
      if (m == nullptr || !mr_covers(m, s.addr, s.length)) return IBV_WC_LOC_PROT_ERR;
      if (s.length > cap - total) return IBV_WC_LOC_LEN_ERR;
      memcpy(out + total, reinterpret_cast<const void*>(s.addr), s.length);
      total += s.length;
    }
  }
  // A raw Ethernet send carries one frame: at most the port's MTU plus the Ethernet header and a
  // VLAN tag (the minimum was checked at post).
  if (total > d->mtu + kEthHlen + 4) return IBV_WC_LOC_LEN_ERR;
  *len = total;
  return IBV_WC_SUCCESS;
}

// The frames gathered in d->seg_batch (TSO segments, plain sends' frames), onto the wire: one
// sendmmsg() on AF_PACKET (what it refuses is lost: a NIC reports no such thing either; counted in
// tx_wire_errors), each frame in turn in memory.
void wire_send_batch(SwDev* d) {
  std::vector<iovec>& b = d->seg_batch;
  if (d->cfg.carrier == SwCarrier::kMemory) {
    for (const iovec& v : b) {
      const auto* p = static_cast<const uint8_t*>(v.iov_base);
      d->wire.sent.emplace_back(p, p + v.iov_len);
    }
  }
  uint32_t sent = uint32_t(b.size());
  if (d->cfg.carrier == SwCarrier::kPacket) {
    int n = sw_packet_send_batch(d->pkt_fd, d->ifindex, b.data(), uint32_t(b.size()));
    sent = n < 0 ? 0 : uint32_t(n);
    d->st.tx_wire_errors += b.size() - sent;
  }
  for (uint32_t i = 0; i < sent; ++i) {
    ++d->st.tx_frames;
    d->st.tx_bytes += b[i].iov_len;
  }
  b.clear();
}

// A plain send's frame joins the batch behind what is already there (a full batch goes first);
// the batch leaves in one sendmmsg() when execute_sends() ends or a TSO WR comes: the WRs of one
// doorbell reach the wire as a NIC sends them, without a system call each. `used`: the batch's
// bytes in seg_scratch.
void wire_queue(SwDev* d, const uint8_t* f, uint32_t len, uint32_t* used) {
  if (d->seg_batch.size() == kTsoBatchFrames || *used + len > d->seg_scratch.size()) {
    wire_send_batch(d);
    *used = 0;
  }
  uint8_t* p = d->seg_scratch.data() + *used;
  memcpy(p, f, len);
  d->seg_batch.push_back(iovec{p, len});
  *used += len;
}

// Lands one received frame: the flow rule of lowest priority value that matches picks the QP;
// no rule -> the kernel's.
void land(SwDev* d, const uint8_t* f, uint32_t len) {
  SwFlow* best = nullptr;
  for (SwFlow* fl : d->flows) {
    if (!sw_flow_match(*fl, f, len)) continue;
    if (best == nullptr || fl->priority < best->priority || (fl->priority == best->priority && fl->seq < best->seq))
      best = fl;
  }
  if (best == nullptr) {
    ++d->st.rx_to_kernel;
    if (d->cfg.carrier == SwCarrier::kMemory) {
      if (d->wire.kernel.size() == kKernelQueueMax) d->wire.kernel.pop_front();
      d->wire.kernel.emplace_back(f, f + len);
    }
    return;
  }
  SwQp* q = best->qp;
  if (q->qp.state != IBV_QPS_RTR && q->qp.state != IBV_QPS_RTS) {
    ++d->st.rx_qp_not_ready;
    return;
  }
  if (q->rq_next == q->rq_head) {
    ++d->st.rx_no_wqe;
    return;
  }
  const uint32_t idx = q->rq_next++;
  const SwRecvWqe& w = q->rq[idx % q->rq.size()];
  ibv_wc_status st = IBV_WC_SUCCESS;
  uint32_t done = 0;
  for (int i = 0; i < w.num_sge && done < len; ++i) {
    const ibv_sge& s = w.sge[size_t(i)];
    const SwMr* m = find_mr(d, q->pd, s.lkey);
    // A receive buffer must be writable by the device: IBV_ACCESS_LOCAL_WRITE (ibv_reg_mr(3)).
    if (m == nullptr || !mr_covers(m, s.addr, s.length) || !(m->access & IBV_ACCESS_LOCAL_WRITE)) {
      st = IBV_WC_LOC_PROT_ERR;
      break;
    }
    uint32_t n = std::min(s.length, len - done);
    memcpy(reinterpret_cast<void*>(s.addr), f + done, n);
    done += n;
  }
  if (st == IBV_WC_SUCCESS && done < len) st = IBV_WC_LOC_LEN_ERR;
  cq_push(q->rcq, make_cqe(q, false, idx, w.wr_id, st, len));
  if (st == IBV_WC_SUCCESS) {
    ++d->st.rx_frames;
  } else {
    ++d->st.rx_errors;
    to_error(q);
  }
}

// IBV_WR_TSO: the header copied into the WQE at post, then the payload (its sges, or the inline
// data), cut into mss-sized TCP segments with their own IP length and id, sequence number, flags
// (FIN/PSH on the last, CWR on the first) and both checksums — what the NIC does, in software
// tcp_gso_segment()'s rules (stack/dev/sw_offload: tso_segment_sg(), each segment gathered
// straight from the WR's pieces into the segment buffer). The header must be Ethernet/IPv4/TCP
// and exactly hdr_sz long (its IHL and data offset), else a local QP operation error, as is an
// mss of 0 (mlx5 posts both; the WQE is malformed for the hardware). Segments larger than the
// port's MTU: a local length error. An sge outside its MR: a local protection error.
ibv_wc_status send_tso(SwQp* q, const SwSendWqe& w) {
  SwDev* d = q->c->dev;
  uint8_t* hdr = d->tso_hdr.data();
  memcpy(hdr, w.tso_hdr.data(), w.hdr_sz);
  FrameSeg* segs = d->tso_segs.data();
  uint32_t n = 0, payload = 0;
  segs[n++] = FrameSeg{hdr, w.hdr_sz};
  if (w.send_flags & IBV_SEND_INLINE) {
    segs[n++] = FrameSeg{w.inl.data(), w.inl_len};
    payload = w.inl_len;
  } else {
    for (int i = 0; i < w.num_sge; ++i) {
      const ibv_sge& s = w.sge[size_t(i)];
      const SwMr* m = find_mr(d, q->pd, s.lkey);
      if (m == nullptr || !mr_covers(m, s.addr, s.length)) return IBV_WC_LOC_PROT_ERR;
      segs[n++] = FrameSeg{reinterpret_cast<const uint8_t*>(s.addr), s.length};
      payload += s.length;
    }
  }
  if (w.mss == 0 || w.hdr_sz < kEthHlen + 20) return IBV_WC_LOC_QP_OP_ERR;
  const uint8_t* ip = hdr + kEthHlen;
  const uint32_t l4 = kEthHlen + (ip[0] & 0xfu) * 4u;
  if (l4 + 20 > w.hdr_sz || l4 + (hdr[l4 + 12] >> 4) * 4u != w.hdr_sz) return IBV_WC_LOC_QP_OP_ERR;
  if (w.hdr_sz - kEthHlen + uint32_t(w.mss) > d->mtu) return IBV_WC_LOC_LEN_ERR;
  store_be16(hdr + kEthHlen + 2, uint16_t(w.hdr_sz - kEthHlen + payload));  // the template's length is the NIC's to fix
  const TxFrame f{.segs = absl::Span<const FrameSeg>(segs, n), .flags = kTxTso, .gso_size = w.mss};
  // Segments are cut into the batch buffer back to back; a full batch goes out before the next.
  const uint32_t room = w.hdr_sz + uint32_t(w.mss);  // the most one segment takes (<= MTU + 14)
  uint32_t used = 0;
  d->seg_batch.clear();
  const int nsegs = tso_segment_sg(
      f,
      [&](int) {
        if (d->seg_batch.size() == kTsoBatchFrames || used + room > d->seg_scratch.size()) {
          wire_send_batch(d);
          used = 0;
        }
        return d->seg_scratch.data() + used;
      },
      [&](int, uint32_t len) {
        d->seg_batch.push_back(iovec{d->seg_scratch.data() + used, len});
        used += len;
      });
  if (!d->seg_batch.empty()) wire_send_batch(d);
  return nsegs < 0 ? IBV_WC_LOC_QP_OP_ERR : IBV_WC_SUCCESS;
}

// The divert map holds what the backend's rules are: protocol and local port exact, local address
// exact or any, remote address and port both exact or both any (but not a remote with any local).
void divert_flow(SwDev* d, SwFlow* f) {
  const bool local_exact = f->dip_m == 0xffffffffu, local_any = f->dip_m == 0;
  const bool remote_exact = f->sip_m == 0xffffffffu && f->sport_m == 0xffff;
  const bool remote_any = f->sip_m == 0 && f->sport_m == 0;
  if (f->proto == 0 || f->dport_m != 0xffff || !(local_exact || local_any) || !(remote_exact || remote_any) ||
      (local_any && remote_exact)) {
    ++d->st.undivertable_rules;
    return;
  }
  DivertKey k;
  k.protocol = f->proto;
  k.local_addr = local_exact ? f->dip : 0;
  k.local_port = f->dport;
  k.remote_addr = remote_exact ? f->sip : 0;
  k.remote_port = remote_exact ? f->sport : 0;
  if (d->divert->add(k) != 0) {
    ++d->st.undivertable_rules;
    return;
  }
  f->divert_key = k;
  f->diverted = true;
  ++d->st.diverted_rules;
}

bool valid_transition(ibv_qp_state cur, ibv_qp_state next) {
  if (next == IBV_QPS_RESET || next == IBV_QPS_ERR) return true;
  switch (cur) {
    case IBV_QPS_RESET: return next == IBV_QPS_INIT;
    case IBV_QPS_INIT: return next == IBV_QPS_INIT || next == IBV_QPS_RTR;
    case IBV_QPS_RTR: return next == IBV_QPS_RTS;
    case IBV_QPS_RTS: return next == IBV_QPS_RTS;
    default: return false;
  }
}

}  // namespace

void execute_sends(SwQp* q) {
  SwDev* d = q->c->dev;
  if (d->hold) return;
  uint32_t used = 0;  // wire_queue()'s batch, sent at every way out of here
  struct Flush {
    SwDev* d;
    ~Flush() {
      if (!d->seg_batch.empty()) wire_send_batch(d);
    }
  } flush{d};
  d->seg_batch.clear();
  while (q->sq_proc != q->sq_head) {
    if (q->qp.state == IBV_QPS_ERR) {
      flush_qp(q);
      return;
    }
    const uint32_t idx = q->sq_proc++;
    const SwSendWqe& w = q->sq[idx % q->sq.size()];
    uint32_t len = 0;
    ibv_wc_status st = IBV_WC_SUCCESS;
    if (d->fail_next_send != 0) {
      st = ibv_wc_status(d->fail_next_send);
      d->fail_next_send = 0;
    } else if (w.opcode == IBV_WR_TSO) {
      if (!d->seg_batch.empty()) wire_send_batch(d);  // the frames before it go first
      used = 0;
      st = send_tso(q, w);
    } else if ((st = gather(q, w, &len)) == IBV_WC_SUCCESS) {
      if (w.send_flags & IBV_SEND_IP_CSUM) sw_fill_csums(d->scratch.data(), len);
      wire_queue(d, d->scratch.data(), len, &used);
    }
    if (st == IBV_WC_SUCCESS) {
      if (w.signaled) cq_push(q->scq, make_cqe(q, true, idx, w.wr_id, st, 0));
    } else {
      cq_push(q->scq, make_cqe(q, true, idx, w.wr_id, st, 0));
      ++d->st.tx_errors;
      to_error(q);
      return;
    }
  }
}

void pump_rx(SwDev* d, int budget) {
  for (int i = 0; i < budget; ++i) {
    if (d->cfg.carrier == SwCarrier::kMemory) {
      if (d->wire.inbound.empty()) return;
      std::vector<uint8_t> f = std::move(d->wire.inbound.front());
      d->wire.inbound.pop_front();
      if (d->wire.inbound.empty() && d->wire.arrival_fd >= 0) {  // nothing more to take in
        uint64_t v;
        (void)!read(d->wire.arrival_fd, &v, sizeof v);
      }
      land(d, f.data(), uint32_t(f.size()));
    } else {
      if (d->pkt_fd < 0) return;
      int n = sw_packet_recv(d->pkt_fd, d->scratch.data(), uint32_t(d->scratch.size()));
      if (n <= 0) return;
      land(d, d->scratch.data(), uint32_t(n));
    }
  }
}

bool sq_references_lkey(SwDev* d, uint32_t lkey) {
  for (SwQp* q : d->qps) {
    for (uint32_t i = q->sq_proc; i != q->sq_head; ++i) {
      const SwSendWqe& w = q->sq[i % q->sq.size()];
      if (w.send_flags & IBV_SEND_INLINE) continue;
      for (int s = 0; s < w.num_sge; ++s)
        if (w.sge[size_t(s)].lkey == lkey) return true;
    }
  }
  return false;
}

// ibv_create_qp(3): "The function ibv_create_qp() will update the qp_init_attr->cap struct with
// the actual QP values of the QP that was created"; queues are rounded up to powers of two (mlx5).
namespace {

ibv_qp* create_qp_locked(ibv_pd* pd, ibv_qp_init_attr* a, uint16_t max_tso_header) {
  SwPd* p = to_pd(pd);
  SwDev* d = p->c->dev;
  if (a->qp_type != IBV_QPT_RAW_PACKET) {  // this device has raw Ethernet queues only
    errno = EOPNOTSUPP;
    return nullptr;
  }
  const ibv_qp_cap& c = a->cap;
  if (a->send_cq == nullptr || a->recv_cq == nullptr || a->srq != nullptr || c.max_send_wr > d->cfg.max_qp_wr ||
      c.max_recv_wr > d->cfg.max_qp_wr || c.max_send_sge > d->cfg.max_sge || c.max_recv_sge > d->cfg.max_sge ||
      c.max_inline_data > d->cfg.max_inline_data) {
    errno = EINVAL;
    return nullptr;
  }
  if (d->cfg.carrier == SwCarrier::kPacket && d->pkt_fd < 0) {
    // The kernel gives raw packet QPs to CAP_NET_RAW only (uverbs create_qp: -EPERM), and the
    // AF_PACKET socket needs the same.
    int fd = sw_packet_open(d->cfg.ifname, &d->ifindex, &d->mtu);
    if (fd < 0) {
      errno = -fd;
      return nullptr;
    }
    d->pkt_fd = fd;
    for (SwChannel* ch : d->channels) channel_watch_arrivals(ch, fd);
    d->st.divert_active = SwDivert::open(d->ifindex, &d->divert, &d->divert_why) == 0 ? 1 : 0;
  }
  auto* q = new (std::nothrow) SwQp();
  if (q == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  q->c = p->c;
  q->pd = p;
  q->scq = to_cq(a->send_cq);
  q->rcq = to_cq(a->recv_cq);
  q->cap = c;
  q->cap.max_send_wr = roundup_pow2(std::max(1u, c.max_send_wr));
  q->cap.max_recv_wr = roundup_pow2(std::max(1u, c.max_recv_wr));
  q->cap.max_send_sge = std::max(1u, c.max_send_sge);
  q->cap.max_recv_sge = std::max(1u, c.max_recv_sge);
  q->sq_sig_all = a->sq_sig_all != 0;
  q->max_tso_header = max_tso_header;
  q->sq.resize(q->cap.max_send_wr);
  for (SwSendWqe& w : q->sq) {
    w.sge.resize(q->cap.max_send_sge);
    w.inl.resize(q->cap.max_inline_data);
    w.tso_hdr.resize(max_tso_header);
  }
  q->rq.resize(q->cap.max_recv_wr);
  for (SwRecvWqe& w : q->rq) w.sge.resize(q->cap.max_recv_sge);
  a->cap = q->cap;
  q->qp.context = pd->context;
  q->qp.qp_context = a->qp_context;
  q->qp.pd = pd;
  q->qp.send_cq = a->send_cq;
  q->qp.recv_cq = a->recv_cq;
  q->qp.handle = d->next_qpn;
  q->qp.qp_num = d->next_qpn++;
  q->qp.state = IBV_QPS_RESET;
  q->qp.qp_type = IBV_QPT_RAW_PACKET;
  ++p->users;
  ++q->scq->users;
  ++q->rcq->users;
  d->qps.push_back(q);
  ++d->st.live_objects;
  return &q->qp;
}

}  // namespace

ibv_qp* sw_create_qp(ibv_pd* pd, ibv_qp_init_attr* a) {
  std::lock_guard<std::mutex> g(g_mu);
  return create_qp_locked(pd, a, 0);
}

// ibv_create_qp_ex(3): IBV_QP_INIT_ATTR_PD is required; IBV_QP_INIT_ATTR_MAX_TSO_HEADER asks for
// IBV_WR_TSO, which the device must report (tso_caps) and which bounds the header (mlx5: EINVAL).
ibv_qp* sw_create_qp_ex(ibv_context* context, ibv_qp_init_attr_ex* ax) {
  std::lock_guard<std::mutex> g(g_mu);
  const uint32_t known = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_MAX_TSO_HEADER;
  if (!(ax->comp_mask & IBV_QP_INIT_ATTR_PD) || ax->pd == nullptr || (ax->comp_mask & ~known) ||
      ax->pd->context != context) {
    errno = EINVAL;
    return nullptr;
  }
  uint16_t tso_hdr = 0;
  if (ax->comp_mask & IBV_QP_INIT_ATTR_MAX_TSO_HEADER) {
    if (to_ctx(context)->dev->cfg.max_tso == 0 || ax->max_tso_header > kMaxTsoHeader) {
      errno = EINVAL;
      return nullptr;
    }
    tso_hdr = ax->max_tso_header;
  }
  ibv_qp_init_attr a{};
  a.qp_context = ax->qp_context;
  a.send_cq = ax->send_cq;
  a.recv_cq = ax->recv_cq;
  a.srq = ax->srq;
  a.cap = ax->cap;
  a.qp_type = ax->qp_type;
  a.sq_sig_all = ax->sq_sig_all;
  ibv_qp* qp = create_qp_locked(ax->pd, &a, tso_hdr);
  if (qp != nullptr) ax->cap = a.cap;
  return qp;
}

// ibv_modify_qp(3), with the attribute rules of ib_modify_qp_is_ok() for IB_QPT_RAW_PACKET:
// RESET->INIT needs IBV_QP_PORT; INIT->RTR and RTR->RTS need nothing more; any state may go to
// RESET or ERR. Anything else is EINVAL, as is a mask without IBV_QP_STATE.
int sw_modify_qp(ibv_qp* qp, ibv_qp_attr* attr, int mask) {
  std::lock_guard<std::mutex> g(g_mu);
  SwQp* q = to_qp(qp);
  if (!(mask & IBV_QP_STATE)) return EINVAL;
  const ibv_qp_state cur = qp->state;
  const ibv_qp_state next = attr->qp_state;
  if ((mask & IBV_QP_CUR_STATE) && attr->cur_qp_state != cur) return EINVAL;
  if (!valid_transition(cur, next)) return EINVAL;
  int allowed = IBV_QP_STATE | IBV_QP_CUR_STATE;
  if (next == IBV_QPS_INIT) allowed |= IBV_QP_PORT;
  if (mask & ~allowed) return EINVAL;
  if (cur == IBV_QPS_RESET && next == IBV_QPS_INIT && !(mask & IBV_QP_PORT)) return EINVAL;
  if ((mask & IBV_QP_PORT) && attr->port_num != 1) return EINVAL;
  if (next == IBV_QPS_RESET) {  // the work queues are emptied without completions
    cq_clean(q->scq, q);
    if (q->rcq != q->scq) cq_clean(q->rcq, q);
    q->sq_head = q->sq_proc = q->sq_tail = 0;
    q->rq_head = q->rq_next = q->rq_tail = 0;
  }
  qp->state = next;
  if (next == IBV_QPS_ERR) flush_qp(q);
  return 0;
}

void destroy_qp_locked(SwQp* q) {
  SwDev* d = q->c->dev;
  cq_clean(q->scq, q);
  if (q->rcq != q->scq) cq_clean(q->rcq, q);
  --q->pd->users;
  --q->scq->users;
  --q->rcq->users;
  d->qps.erase(std::find(d->qps.begin(), d->qps.end(), q));
  --d->st.live_objects;
  delete q;
}

// Flow rules hold their QP (the kernel counts them as users of the QP: EBUSY).
int sw_destroy_qp(ibv_qp* qp) {
  std::lock_guard<std::mutex> g(g_mu);
  SwQp* q = to_qp(qp);
  if (q->flows != 0) return EBUSY;
  destroy_qp_locked(q);
  return 0;
}

// ibv_post_send(3). Errnos as rdma-core's mlx5 _mlx5_post_send(), checked in its order: an opcode
// the QP cannot execute EINVAL, a full send queue ENOMEM (mlx5_wq_overflow()), too many sges
// ENOMEM, IBV_SEND_IP_CSUM on a device without IBV_RAW_PACKET_CAP_IP_CSUM EINVAL, a bad TSO header
// EINVAL (IBV_WR_TSO needs a QP created with max_tso_header), inline data beyond max_inline_data
// ENOMEM, fewer than 18 bytes EINVAL. A QP not yet in RTS: EINVAL (rxe_post_send()).
// WRs before *bad_wr are posted. Inline data is copied here: the buffer is free on return.
int sw_post_send(ibv_qp* qp, ibv_send_wr* wr, ibv_send_wr** bad_wr) {
  std::lock_guard<std::mutex> g(g_mu);
  SwQp* q = to_qp(qp);
  SwDev* d = q->c->dev;
  const unsigned known = IBV_SEND_FENCE | IBV_SEND_SIGNALED | IBV_SEND_SOLICITED | IBV_SEND_INLINE | IBV_SEND_IP_CSUM;
  int err = 0;
  for (; wr != nullptr; wr = wr->next) {
    const bool tso = wr->opcode == IBV_WR_TSO;
    if (qp->state != IBV_QPS_RTS && qp->state != IBV_QPS_ERR) err = EINVAL;
    else if ((wr->opcode != IBV_WR_SEND && !tso) || (wr->send_flags & ~known)) err = EINVAL;
    else if (q->sq_head - q->sq_tail >= q->sq.size()) err = ENOMEM;
    else if (wr->num_sge < 0 || uint32_t(wr->num_sge) > q->cap.max_send_sge) err = ENOMEM;
    else if ((wr->send_flags & IBV_SEND_IP_CSUM) && !d->cfg.ip_csum) err = EINVAL;
    // mlx5 set_tso_eth_seg(): a QP without max_tso_header, a header shorter than the inline L2
    // header or longer than max_tso_header: EINVAL. (The mss is not looked at: a zero mss fails
    // in the device, send_tso().)
    else if (tso && (q->max_tso_header == 0 || wr->tso.hdr == nullptr || wr->tso.hdr_sz < kMinEthSend ||
                     wr->tso.hdr_sz > q->max_tso_header))
      err = EINVAL;
    if (err == 0) {
      uint64_t total = 0;
      for (int i = 0; i < wr->num_sge; ++i) total += wr->sg_list[i].length;
      if ((wr->send_flags & IBV_SEND_INLINE) && total > q->cap.max_inline_data) err = ENOMEM;
      else if (tso && total > d->cfg.max_tso) err = EINVAL;  // payload beyond tso_caps.max_tso
      else if (tso) total += wr->tso.hdr_sz;
      // mlx5 copies the first MLX5_ETH_L2_INLINE_HEADER_SIZE (18) bytes of a raw Ethernet send
      // into the WQE and refuses a send that has fewer (copy_eth_inline_headers(): EINVAL).
      else if (total < kMinEthSend) err = EINVAL;
    }
    if (err != 0) break;
    SwSendWqe& w = q->sq[q->sq_head % q->sq.size()];
    w.wr_id = wr->wr_id;
    w.signaled = q->sq_sig_all || (wr->send_flags & IBV_SEND_SIGNALED);
    w.send_flags = wr->send_flags;
    w.num_sge = wr->num_sge;
    w.inl_len = 0;
    w.opcode = wr->opcode;
    if (tso) {
      memcpy(w.tso_hdr.data(), wr->tso.hdr, wr->tso.hdr_sz);  // copied into the WQE, as mlx5 does
      w.hdr_sz = wr->tso.hdr_sz;
      w.mss = wr->tso.mss;
    }
    for (int i = 0; i < wr->num_sge; ++i) {
      w.sge[size_t(i)] = wr->sg_list[i];
      if (wr->send_flags & IBV_SEND_INLINE) {
        memcpy(w.inl.data() + w.inl_len, reinterpret_cast<const void*>(wr->sg_list[i].addr), wr->sg_list[i].length);
        w.inl_len += wr->sg_list[i].length;
      }
    }
    ++q->sq_head;
  }
  if (err != 0) *bad_wr = wr;
  execute_sends(q);  // the doorbell rings for the WRs posted before an error, too
  return err;
}

// ibv_post_recv(3). mlx5_post_recv(): a full receive queue ENOMEM, too many sges EINVAL; a QP in
// RESET EINVAL (rxe_post_recv()). In the error state the WR completes at once with a flush error.
int sw_post_recv(ibv_qp* qp, ibv_recv_wr* wr, ibv_recv_wr** bad_wr) {
  std::lock_guard<std::mutex> g(g_mu);
  SwQp* q = to_qp(qp);
  int err = 0;
  for (; wr != nullptr; wr = wr->next) {
    if (qp->state == IBV_QPS_RESET) err = EINVAL;
    else if (q->rq_head - q->rq_tail >= q->rq.size()) err = ENOMEM;
    else if (wr->num_sge < 0 || uint32_t(wr->num_sge) > q->cap.max_recv_sge) err = EINVAL;
    if (err != 0) break;
    SwRecvWqe& w = q->rq[q->rq_head % q->rq.size()];
    w.wr_id = wr->wr_id;
    w.num_sge = wr->num_sge;
    for (int i = 0; i < wr->num_sge; ++i) w.sge[size_t(i)] = wr->sg_list[i];
    ++q->rq_head;
  }
  if (err != 0) *bad_wr = wr;
  if (qp->state == IBV_QPS_ERR) flush_qp(q);
  return err;
}

// ibv_create_flow(3): NULL with errno. More rules than the device holds: ENOMEM.
ibv_flow* sw_create_flow(ibv_qp* qp, ibv_flow_attr* attr) {
  std::lock_guard<std::mutex> g(g_mu);
  SwQp* q = to_qp(qp);
  SwDev* d = q->c->dev;
  if (d->flows.size() >= d->cfg.max_flows) {
    errno = ENOMEM;
    return nullptr;
  }
  auto* f = new (std::nothrow) SwFlow();
  if (f == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  if (int err = sw_flow_parse(attr, f); err != 0) {
    delete f;
    errno = err;
    return nullptr;
  }
  f->qp = q;
  f->seq = d->next_flow_seq++;
  if (d->divert != nullptr) divert_flow(d, f);
  f->flow.context = qp->context;
  f->flow.handle = uint32_t(f->seq);
  ++q->flows;
  d->flows.push_back(f);
  ++d->st.live_objects;
  return &f->flow;
}

void destroy_flow_locked(SwFlow* f) {
  SwDev* d = f->qp->c->dev;
  if (f->diverted) {
    --d->st.diverted_rules;
    bool shared = false;  // another rule diverts the same flow
    for (SwFlow* o : d->flows)
      if (o != f && o->diverted && memcmp(&o->divert_key, &f->divert_key, sizeof(DivertKey)) == 0) shared = true;
    if (!shared && d->divert != nullptr) d->divert->remove(f->divert_key);
  }
  --f->qp->flows;
  d->flows.erase(std::find(d->flows.begin(), d->flows.end(), f));
  --d->st.live_objects;
  delete f;
}

int sw_destroy_flow(ibv_flow* flow) {
  std::lock_guard<std::mutex> g(g_mu);
  destroy_flow_locked(to_flow(flow));
  return 0;
}

}  // namespace xmit::ibv::sw
