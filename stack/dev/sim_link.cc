// stack/dev/sim_link.cc — the in-memory link (see sim_link.h): xmit() copies into a TX queue,
// SimLink::run() moves frames across a faulty wire into preallocated receive buffers.
#include "stack/dev/sim_link.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

#include "stack/dev/sw_offload.h"

namespace xmit {

struct SimPipe {
  enum BufState : uint8_t { kFree, kWire, kRx, kKernel, kUser };
  struct TxSlot {
    uint64_t cookie = 0;
    uint32_t len = 0;
    uint32_t flags = 0;
    uint16_t gso_size = 0;
  };
  struct InFlight {
    uint64_t arrival = 0;
    uint64_t seq = 0;  // ties on arrival land in the order they went on the wire
    uint32_t buf = 0;
  };
  // A min-heap on (arrival, seq) through std::push_heap, which builds max-heaps.
  static bool later(const InFlight& x, const InFlight& y) {
    return x.arrival != y.arrival ? x.arrival > y.arrival : x.seq > y.seq;
  }

  SimPipe(const SimLinkConfig& cfg, const SimFaults& f, uint32_t seed);

  uint8_t* buf(uint32_t id) { return bufs.data() + size_t{id} * buf_size; }
  int alloc_buf();
  void free_buf(uint32_t id) {
    state[id] = kFree;
    free_list.push_back(id);
  }
  double draw() { return static_cast<double>(rng()) * (1.0 / 4294967296.0); }
  void put_on_wire(const uint8_t* data, uint32_t len, uint64_t now);
  void carry(uint64_t now);
  int land(uint64_t now, const FlowTable& flows);

  const SimLinkConfig& cfg;
  const SimFaults faults;
  std::mt19937 rng;
  SimPipeStats stats;

  // TX queue, written by xmit(), read by carry() and poll_tx(). Slots [cons, sent) are on the wire
  // and wait for poll_tx(); slots [sent, prod) wait for run().
  uint32_t stage_size = 0;
  std::vector<uint8_t> stage;  // tx_depth frames of stage_size bytes
  std::vector<TxSlot> tx;
  uint64_t tx_prod = 0, tx_sent = 0, tx_cons = 0;

  // Receive buffers of max_frame bytes; buf_id is the index.
  uint32_t buf_size = 0;
  std::vector<uint8_t> bufs;
  std::vector<uint32_t> buf_len;
  std::vector<BufState> state;
  std::vector<uint32_t> free_list;
  std::vector<uint8_t> scratch;  // one TSO segment

  std::vector<InFlight> wire;  // heap, capacity = receive buffers
  uint64_t wire_seq = 0;

  // Landed frames: rings of buffer ids.
  std::vector<uint32_t> rxq, kq;
  uint64_t rx_prod = 0, rx_cons = 0, k_prod = 0, k_cons = 0;
};

SimPipe::SimPipe(const SimLinkConfig& c, const SimFaults& f, uint32_t seed)
    : cfg(c), faults(f), rng(seed) {
  const NetdevFeatures& feat = cfg.features;
  stage_size = std::max(feat.max_frame, feat.tso ? feat.tso_max_size : 0u);
  stage.resize(size_t{cfg.tx_depth} * stage_size);
  tx.resize(cfg.tx_depth);
  buf_size = feat.max_frame;
  const uint32_t nbufs = cfg.rx_buffers != 0
                             ? cfg.rx_buffers
                             : cfg.rx_depth + cfg.kernel_depth + 2 * cfg.tx_depth;
  bufs.resize(size_t{nbufs} * buf_size);
  buf_len.resize(nbufs);
  state.resize(nbufs, kFree);
  free_list.reserve(nbufs);
  for (uint32_t i = nbufs; i-- > 0;) free_list.push_back(i);  // hand out 0, 1, 2, ... first
  scratch.resize(buf_size);
  wire.reserve(nbufs);
  rxq.resize(cfg.rx_depth);
  kq.resize(cfg.kernel_depth);
}

int SimPipe::alloc_buf() {
  if (free_list.empty()) return -ENOBUFS;
  uint32_t id = free_list.back();
  free_list.pop_back();
  return static_cast<int>(id);
}

void SimPipe::put_on_wire(const uint8_t* data, uint32_t len, uint64_t now) {
  ++stats.wire_frames;
  // Always three draws, so the n-th frame's fate depends on the seed alone.
  const bool drop = draw() < faults.drop;
  const bool reorder = draw() < faults.reorder;
  const bool dup = draw() < faults.duplicate;
  if (drop) {
    ++stats.dropped;
    return;
  }
  uint64_t arrival = now + cfg.latency_ns;
  if (reorder) {
    arrival += faults.reorder_delay_ns;
    ++stats.reordered;
  }
  if (dup) ++stats.duplicated;
  for (int copy = 0; copy < (dup ? 2 : 1); ++copy) {
    int id = alloc_buf();
    if (id < 0) {
      ++stats.rx_no_buffer;
      continue;
    }
    std::memcpy(buf(id), data, len);
    buf_len[id] = len;
    state[id] = kWire;
    wire.push_back({.arrival = arrival, .seq = wire_seq++, .buf = static_cast<uint32_t>(id)});
    std::push_heap(wire.begin(), wire.end(), later);
  }
}

void SimPipe::carry(uint64_t now) {
  for (; tx_sent != tx_prod; ++tx_sent) {
    const size_t idx = tx_sent % tx.size();
    const TxSlot& slot = tx[idx];
    const uint8_t* data = stage.data() + idx * stage_size;
    if (!(slot.flags & kTxTso)) {
      put_on_wire(data, slot.len, now);
      continue;
    }
    int n = tso_segment(data, slot.len, slot.gso_size, scratch.data(),
                        static_cast<uint32_t>(scratch.size()),
                        [&](const uint8_t* seg, uint32_t len) {
                          put_on_wire(seg, len, now);
                          return true;
                        });
    if (n < 0) ++stats.tso_errors;
  }
}

int SimPipe::land(uint64_t now, const FlowTable& flows) {
  int landed = 0;
  while (!wire.empty() && wire.front().arrival <= now) {
    std::pop_heap(wire.begin(), wire.end(), later);
    const uint32_t id = wire.back().buf;
    wire.pop_back();
    ++landed;
    FlowKey key;
    const bool steered =
        !cfg.steering || (flow_key_from_rx(buf(id), buf_len[id], &key) && flows.match(key));
    if (steered) {
      if (rx_prod - rx_cons == rxq.size()) {
        ++stats.rx_overflow;
        free_buf(id);
        continue;
      }
      ++stats.rx_frames;
      stats.rx_bytes += buf_len[id];
      state[id] = kRx;
      rxq[rx_prod++ % rxq.size()] = id;
    } else {
      ++stats.to_kernel;
      if (k_prod - k_cons == kq.size()) {
        ++stats.kernel_overflow;
        free_buf(id);
        continue;
      }
      state[id] = kKernel;
      kq[k_prod++ % kq.size()] = id;
    }
  }
  return landed;
}

SimEndpoint::SimEndpoint(const SimLinkConfig& cfg, const uint8_t* mac, int ifindex, SimPipe* out,
                         SimPipe* in)
    : cfg_(cfg), ifindex_(ifindex), out_(out), in_(in), flows_(cfg.flow_table_size) {
  std::memcpy(mac_, mac, sizeof(mac_));
}

const NetdevFeatures& SimEndpoint::features() const { return cfg_.features; }
const SimPipeStats& SimEndpoint::tx_stats() const { return out_->stats; }
const SimPipeStats& SimEndpoint::rx_stats() const { return in_->stats; }

int SimEndpoint::xmit(absl::Span<const TxFrame> frames) {
  SimPipe& p = *out_;
  int taken = 0;
  for (const TxFrame& f : frames) {
    if (p.tx_prod - p.tx_cons == p.tx.size()) {
      ++p.stats.tx_full;
      break;
    }
    int err = tx_frame_check(f, cfg_.features);
    const size_t idx = p.tx_prod % p.tx.size();
    uint8_t* data = p.stage.data() + idx * p.stage_size;
    uint32_t len = 0;
    if (err == 0) {
      len = tx_frame_gather(f, data);
      // A TSO frame gets its checksums per segment, in SimPipe::carry().
      if (!(f.flags & kTxTso)) err = tx_finish_csum(data, len, f.flags, f.csum_start, f.csum_offset);
    }
    if (err < 0) {
      ++p.stats.tx_errors;
      return taken != 0 ? taken : err;
    }
    p.tx[idx] = {.cookie = f.cookie, .len = len, .flags = f.flags, .gso_size = f.gso_size};
    ++p.tx_prod;
    ++p.stats.tx_frames;
    p.stats.tx_bytes += len;
    ++taken;
  }
  return taken;
}

int SimEndpoint::poll_tx(absl::FunctionRef<void(uint64_t cookie)> done) {
  SimPipe& p = *out_;
  int n = 0;
  for (; p.tx_cons != p.tx_sent; ++p.tx_cons, ++n) done(p.tx[p.tx_cons % p.tx.size()].cookie);
  return n;
}

int SimEndpoint::poll_rx(int budget, absl::FunctionRef<bool(const RxFrame&)> deliver) {
  SimPipe& p = *in_;
  int n = 0;
  for (; n < budget && p.rx_cons != p.rx_prod; ++n) {
    const uint32_t id = p.rxq[p.rx_cons++ % p.rxq.size()];
    p.state[id] = SimPipe::kUser;  // a deliver() that keeps it may recycle it from the callback
    const bool kept = deliver(RxFrame{.data = p.buf(id), .len = p.buf_len[id], .buf_id = id});
    if (!kept && p.state[id] == SimPipe::kUser) p.free_buf(id);
  }
  return n;
}

void SimEndpoint::rx_recycle(uint64_t buf_id) {
  SimPipe& p = *in_;
  if (buf_id >= p.state.size() || p.state[buf_id] != SimPipe::kUser) {
    ++p.stats.bad_recycle;
    return;
  }
  p.free_buf(static_cast<uint32_t>(buf_id));
}

int SimEndpoint::poll_kernel(int budget, absl::FunctionRef<void(const RxFrame&)> deliver) {
  SimPipe& p = *in_;
  int n = 0;
  for (; n < budget && p.k_cons != p.k_prod; ++n) {
    const uint32_t id = p.kq[p.k_cons++ % p.kq.size()];
    deliver(RxFrame{.data = p.buf(id), .len = p.buf_len[id], .buf_id = id});
    p.free_buf(id);
  }
  return n;
}

SimLink::SimLink(const SimLinkConfig& cfg)
    : cfg_(cfg),
      ab_(std::make_unique<SimPipe>(cfg_, cfg_.faults_ab, cfg_.seed)),
      ba_(std::make_unique<SimPipe>(cfg_, cfg_.faults_ba, cfg_.seed ^ 0x9e3779b9u)),
      a_(new SimEndpoint(cfg_, cfg_.mac_a, cfg_.ifindex_a, ab_.get(), ba_.get())),
      b_(new SimEndpoint(cfg_, cfg_.mac_b, cfg_.ifindex_b, ba_.get(), ab_.get())) {}

SimLink::~SimLink() = default;

int SimLink::run(uint64_t now_ns) {
  now_ = std::max(now_, now_ns);
  ab_->carry(now_);
  ba_->carry(now_);
  return ab_->land(now_, b_->flows_) + ba_->land(now_, a_->flows_);
}

uint32_t SimLink::in_flight() const {
  return static_cast<uint32_t>(ab_->wire.size() + ba_->wire.size());
}

}  // namespace xmit
