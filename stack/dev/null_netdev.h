// stack/dev/null_netdev.h — a device that takes every frame and completes it on the next poll_tx(),
// counting frames and bytes; for benchmarks of the in-stack cost. Counterpart: drivers/net/dummy.c.
#pragma once

#include <cstdint>
#include <vector>

#include "stack/dev/flow_table.h"
#include "stack/dev/netdev.h"

namespace xmit {

struct NullNetdevConfig {
  NetdevFeatures features;
  uint8_t mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
  int ifindex = 1;
  // Frames posted but not yet reaped by poll_tx(); a caller that never reaps sees a full ring.
  uint32_t tx_depth = 4096;
  uint32_t flow_table_size = 64;
};

struct NullNetdevStats {
  uint64_t tx_frames = 0;
  uint64_t tx_bytes = 0;
  uint64_t tx_segs = 0;
  uint64_t tx_full = 0;    // xmit() calls that stopped at a full ring
  uint64_t tx_errors = 0;  // frames refused with -errno
};

// Not thread-safe: one thread at a time, like every Netdev.
class NullNetdev final : public Netdev {
 public:
  explicit NullNetdev(const NullNetdevConfig& cfg = {});

  const NetdevFeatures& features() const override { return cfg_.features; }
  const uint8_t* mac() const override { return cfg_.mac; }
  int ifindex() const override { return cfg_.ifindex; }

  // Validates each frame with tx_frame_check(); a bad frame first in the span is refused with its
  // -errno, a bad frame later ends the burst (the count before it is returned).
  int xmit(absl::Span<const TxFrame> frames) override;
  int poll_tx(absl::FunctionRef<void(uint64_t cookie)> done) override;
  int poll_rx(int budget, absl::FunctionRef<bool(const RxFrame&)> deliver) override;
  void rx_recycle(uint64_t buf_id) override;
  int steer(const FlowKey& key) override { return flows_.add(key); }
  int unsteer(const FlowKey& key) override { return flows_.remove(key); }

  const NullNetdevStats& stats() const { return stats_; }
  uint32_t tx_inflight() const { return static_cast<uint32_t>(prod_ - cons_); }
  const FlowTable& flows() const { return flows_; }

 private:
  NullNetdevConfig cfg_;
  std::vector<uint64_t> cookies_;  // ring of tx_depth completions
  uint64_t prod_ = 0;              // next slot xmit() fills
  uint64_t cons_ = 0;              // next slot poll_tx() reaps
  FlowTable flows_;
  NullNetdevStats stats_;
};

}  // namespace xmit
