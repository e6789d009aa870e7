// stack/dev/flow_table.h — the steering table of the test devices: which flows a queue takes from
// the kernel. Counterpart of an ethtool ntuple table / ibv_create_flow rules / the XDP steering map.
#pragma once

#include <cstdint>
#include <vector>

#include "stack/dev/netdev.h"

namespace xmit {

// The flow a received frame belongs to, seen from the receiver: local = destination. Parses an
// untagged Ethernet/IPv4 frame carrying UDP or TCP; false for anything else (ARP, IPv6, a
// non-first fragment, a truncated header), which a steering device leaves to the kernel.
bool flow_key_from_rx(const uint8_t* frame, uint32_t len, FlowKey* key);

// A fixed-capacity table of steered flows; no allocation after construction.
// Matching: protocol and local_port always; a zero local_addr, remote_addr or remote_port in a rule
// is a wildcard (a socket bound to INADDR_ANY, a listening or unconnected socket).
class FlowTable {
 public:
  explicit FlowTable(uint32_t capacity) : capacity_(capacity) { rules_.reserve(capacity); }

  int add(const FlowKey& key);     // 0, -EEXIST, -ENOSPC
  int remove(const FlowKey& key);  // 0, -ENOENT
  bool match(const FlowKey& pkt) const;
  uint32_t size() const { return static_cast<uint32_t>(rules_.size()); }

 private:
  uint32_t capacity_;
  std::vector<FlowKey> rules_;  // unordered; reserved at construction
};

}  // namespace xmit
