// verbs/ibv/ibv_netdev_data.cc — IbvNetdev's data path: send WRs (scatter-gather, inline, TSO,
// selective signalling), completion reaping and events, RX refill in batches, error recovery.
// Counterparts: mlx5e_xmit(), mlx5e_poll_tx_cq(), mlx5e_post_rx_wqes(), done through the verbs.
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "stack/dev/sw_offload.h"
#include "verbs/ibv/ibv_netdev.h"

namespace xmit::ibv {
namespace {

constexpr uint32_t kEthHlen = 14;
constexpr uint32_t kMinFrame = 18;  // mlx5 refuses raw sends shorter than its inline L2 header

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

}  // namespace

// Fills send WR `w` (and its sges from sges_[*nsge]) for frame `f` in SQ slot n. 0 or -errno.
int IbvNetdev::build_wr(const TxFrame& f, uint64_t n, uint32_t batch_idx, ibv_send_wr& w, uint32_t* nsge) {
  if (int err = tx_frame_check(f, features_); err < 0) return err;
  const uint32_t len = tx_frame_len(f);
  if (len < kMinFrame) return -EINVAL;
  TxSlot& slot = tx_slots_[n % tx_depth_];
  slot = TxSlot{};
  slot.cookie = f.cookie;
  bool user = false;
  for (const FrameSeg& s : f.segs) user |= s.user;
  w = ibv_send_wr{};
  w.wr_id = n;
  w.opcode = IBV_WR_SEND;
  w.sg_list = &sges_[*nsge];
  if ((f.flags & (kTxIpCsum | kTxL4Csum)) || ((f.flags & kTxTso) && features_.ip_csum))
    w.send_flags |= IBV_SEND_IP_CSUM;

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
    ++stats_.tx_tso;
  } else if (len <= max_inline_ && f.segs.size() <= max_sge_) {
    // Inline: the device copies the bytes at post (ibv_post_send(3)); the lkey is not looked at.
    for (const FrameSeg& s : f.segs) sges_[(*nsge)++] = ibv_sge{reinterpret_cast<uint64_t>(s.data), s.len, 0};
    w.num_sge = int(f.segs.size());
    w.send_flags |= IBV_SEND_INLINE;
    ++stats_.tx_inline;
    if (user) ++stats_.tx_user_in_place;  // the device copies inline bytes at post, as a NIC's WQE
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
    if (pieces == max_sge_) {
      in_place = false;
      break;
    }
    uint32_t lkey;
    if (const int r = find_region(s.data + skip, s.len - skip); r >= 0) {
      regs |= 1u << r;
      lkey = regions_[r].mr->lkey;
    } else if (s.user) {
      // The program's memory: registered while this WR reads it (MR cache; kernel: the pages a
      // zerocopy send pins until its skb is freed).
      const int m = mr_cache_->get(s.data + skip, s.len - skip);
      if (m < 0) {
        in_place = false;
        break;
      }
      slot.mr[slot.nmr++] = int16_t(m);
      lkey = mr_cache_->lkey(m);
    } else {
      in_place = false;
      break;
    }
    sges_[*nsge + pieces++] = ibv_sge{reinterpret_cast<uint64_t>(s.data + skip), s.len - skip, lkey};
  }
  if (in_place) {
    *nsge += pieces;
    w.num_sge = int(pieces);
    slot.regions = regs;
    for (uint32_t r = 0; r < kMaxRegions; ++r)
      if (regs & (1u << r)) ++regions_[r].users;
    ++stats_.tx_zero_copy;
    if (user) ++stats_.tx_user_in_place;
    return 0;
  }
  release_slot(slot);  // the cache references taken before a piece could not go in place
  slot.cookie = f.cookie;
  // Copied: into the slot's bounce buffer (buf_size_ bytes), or a TSO payload larger than that into
  // a 64 KiB bounce buffer the WR holds until its completion. A zerocopy frame whose pages cannot
  // be registered (the MR cache full, reg_mr refused for good) leaves now, copied, rather than
  // waiting for a registration. With every 64 KiB buffer read by a posted WR, -ENOBUFS: xmit()
  // takes nothing more, as at a full send queue; their completions free them.
  uint8_t* bounce = mem_ + size_t(rx_bufs_ + n % tx_depth_) * buf_size_;
  if (len - from > buf_size_) {
    if (len - from > kTsoBounceSize) return -EMSGSIZE;
    // No 64 KiB buffers at all (IbvOptions::tso_bounce 0): such a frame can never leave.
    if (tso_bounce_free_.capacity() == 0) return -EMSGSIZE;
    if (tso_bounce_free_.empty()) return -ENOBUFS;
    slot.tso_bounce = tso_bounce_free_.back();
    tso_bounce_free_.pop_back();
    bounce = tso_bounce_mem_ + size_t(slot.tso_bounce) * kTsoBounceSize;
    ++stats_.tx_tso_bounced;
  }
  copy_range(f.segs, from, len - from, bounce);
  sges_[(*nsge)++] = ibv_sge{reinterpret_cast<uint64_t>(bounce), len - from, mem_mr_->lkey};
  w.num_sge = 1;
  ++stats_.tx_copied;
  if (user) {
    // kernel: skb_copy_ubufs() — the user pages were copied: the notification says COPIED.
    ++stats_.tx_user_copied;
    if (f.zerocopy_success != nullptr) *f.zerocopy_success = false;
  }
  return 0;
}

// Drops what slot `s`'s WR held: its fixed regions' use counts and its MR cache references.
void IbvNetdev::release_slot(TxSlot& s) {
  for (uint32_t r = 0; r < kMaxRegions; ++r)
    if (s.regions & (1u << r)) --regions_[r].users;
  for (uint32_t i = 0; i < s.nmr; ++i) mr_cache_->put(s.mr[i]);
  if (s.tso_bounce >= 0) tso_bounce_free_.push_back(s.tso_bounce);  // within the reserved capacity
  s = TxSlot{};
}

int IbvNetdev::xmit(absl::Span<const TxFrame> frames) {
  maybe_recover();
  if (qp_error_) return 0;  // waiting for flushed sends before the QP can run again
  uint32_t taken = 0;
  int first_err = 0;
  bool full = false;
  while (taken < frames.size() && !full) {
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
        release_slot(tx_slots_[n % tx_depth_]);
        if (err == -ENOBUFS) {  // no 64 KiB bounce buffer free: not taken, like a full queue
          ++stats_.tx_bounce_full;
          full = true;
        } else {
          first_err = err;
        }
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
      for (uint32_t i = posted; i < nwr; ++i) release_slot(tx_slots_[(first + i) % tx_depth_]);
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
    const uint64_t cookie = s.cookie;
    release_slot(s);
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
  if (qp_modify(ops_, qp_, IBV_QPS_RESET, port_) != 0 || qp_to_rts(ops_, qp_, port_) != 0) return;  // stays in error
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
    rsges_[i] = ibv_sge{reinterpret_cast<uint64_t>(mem_ + size_t(b) * buf_size_), buf_size_, mem_mr_->lkey};
    rwrs_[i] = ibv_recv_wr{
        .wr_id = b, .next = i + 1 < n ? &rwrs_[i + 1] : nullptr, .sg_list = &rsges_[i], .num_sge = 1};
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
      RxFrame rf{mem_ + size_t(b) * buf_size_, std::min(wc[i].byte_len, buf_size_), b};
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

}  // namespace xmit::ibv
