// stack/dev/sim_link.h — two Netdev endpoints joined by an in-memory wire with a seeded fault
// injector (drop, duplicate, reorder), bounded queues, software offloads and flow steering.
// Counterparts: a veth pair with netem on it; gVisor's link/channel; smoltcp's FaultInjector.
#pragma once

#include <cstdint>
#include <memory>

#include "stack/dev/flow_table.h"
#include "stack/dev/netdev.h"

namespace xmit {

// Per direction. Every frame put on the wire draws three numbers from the direction's
// std::mt19937, in this order: drop, reorder, duplicate; so for a given seed the fate of the n-th
// frame is fixed whatever happened to the others.
struct SimFaults {
  double drop = 0;       // probability the frame is lost on the wire
  double reorder = 0;    // probability it arrives reorder_delay_ns late, behind later frames
  double duplicate = 0;  // probability it arrives twice
  uint64_t reorder_delay_ns = 1000;
};

struct SimLinkConfig {
  // Both endpoints. No offloads by default (a software device, as veth looks to the stack);
  // an offload configured here is emulated: checksums finished, TSO frames segmented.
  NetdevFeatures features = {.max_segs = 16};
  uint8_t mac_a[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x0a};
  uint8_t mac_b[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x0b};
  int ifindex_a = 1;
  int ifindex_b = 2;
  uint32_t tx_depth = 64;      // frames posted and not yet reaped by poll_tx(), per endpoint
  uint32_t rx_depth = 256;     // landed frames waiting for poll_rx(), per endpoint
  uint32_t kernel_depth = 64;  // landed frames for the kernel waiting for poll_kernel()
  uint32_t rx_buffers = 0;     // receive buffers per direction; 0: rx+kernel depth + 2 * tx_depth
  uint32_t flow_table_size = 64;
  bool steering = true;        // false: every frame goes to poll_rx(), none to the kernel
  uint64_t latency_ns = 0;     // one-way wire delay
  SimFaults faults_ab;         // frames sent by a() to b()
  SimFaults faults_ba;
  uint32_t seed = 1;
};

struct SimPipeStats {        // one direction of the link
  uint64_t tx_frames = 0;    // taken by xmit(), as posted (a TSO frame counts once)
  uint64_t tx_bytes = 0;
  uint64_t tx_full = 0;      // xmit() calls that stopped at a full queue
  uint64_t tx_errors = 0;    // frames refused with -errno
  uint64_t wire_frames = 0;  // put on the wire (after TSO, before faults)
  uint64_t tso_errors = 0;   // TSO frames that could not be segmented (lost)
  uint64_t dropped = 0;
  uint64_t reordered = 0;
  uint64_t duplicated = 0;
  uint64_t rx_no_buffer = 0;  // a copy found no free receive buffer (lost)
  uint64_t rx_frames = 0;     // landed in the receiver's RX queue
  uint64_t rx_bytes = 0;
  uint64_t rx_overflow = 0;   // landed on a full RX queue (lost)
  uint64_t to_kernel = 0;     // landed but matched no steered flow
  uint64_t kernel_overflow = 0;
  uint64_t bad_recycle = 0;   // rx_recycle() of a buffer the caller did not keep
};

struct SimPipe;  // one direction: TX queue, wire, receive buffers, RX and kernel queues
class SimLink;

// One end of a SimLink. Not thread-safe; the link and both endpoints belong to one thread.
class SimEndpoint final : public Netdev {
 public:
  const NetdevFeatures& features() const override;
  const uint8_t* mac() const override { return mac_; }
  int ifindex() const override { return ifindex_; }

  // Gathers each frame into the TX queue and applies checksum offloads right away; frames leave
  // at the next SimLink::run(). Stops at a full queue; a bad frame first in the span is refused
  // with its -errno (tx_frame_check()), a bad frame later ends the burst.
  int xmit(absl::Span<const TxFrame> frames) override;
  // Completes frames that SimLink::run() has put on the wire, in posting order.
  int poll_tx(absl::FunctionRef<void(uint64_t cookie)> done) override;
  int poll_rx(int budget, absl::FunctionRef<bool(const RxFrame&)> deliver) override;
  void rx_recycle(uint64_t buf_id) override;
  int steer(const FlowKey& key) override { return flows_.add(key); }
  int unsteer(const FlowKey& key) override { return flows_.remove(key); }

  // What the kernel would have received: landed frames that matched no steered flow.
  int poll_kernel(int budget, absl::FunctionRef<void(const RxFrame&)> deliver);

  const SimPipeStats& tx_stats() const;  // the direction this endpoint sends into
  const SimPipeStats& rx_stats() const;  // the direction this endpoint receives from
  const FlowTable& flows() const { return flows_; }

 private:
  friend class SimLink;
  SimEndpoint(const SimLinkConfig& cfg, const uint8_t* mac, int ifindex, SimPipe* out,
              SimPipe* in);

  const SimLinkConfig& cfg_;
  uint8_t mac_[6];
  int ifindex_;
  SimPipe* out_;
  SimPipe* in_;
  FlowTable flows_;
};

class SimLink {
 public:
  explicit SimLink(const SimLinkConfig& cfg);
  ~SimLink();
  SimLink(const SimLink&) = delete;
  SimLink& operator=(const SimLink&) = delete;

  SimEndpoint& a() { return *a_; }
  SimEndpoint& b() { return *b_; }

  // The wire's clock: puts every frame posted so far on the wire (TSO segmentation, faults),
  // completes them for poll_tx(), then lands every frame due by `now_ns` in the receiver's RX or
  // kernel queue. `now_ns` never goes backwards (an earlier value is taken as the last one).
  // Returns the number of frames landed.
  int run(uint64_t now_ns);
  uint64_t now() const { return now_; }
  // Frames on the wire, not landed yet (reordered or delayed).
  uint32_t in_flight() const;

 private:
  SimLinkConfig cfg_;
  std::unique_ptr<SimPipe> ab_;
  std::unique_ptr<SimPipe> ba_;
  std::unique_ptr<SimEndpoint> a_;
  std::unique_ptr<SimEndpoint> b_;
  uint64_t now_ = 0;
};

}  // namespace xmit
