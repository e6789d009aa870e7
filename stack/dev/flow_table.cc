// stack/dev/flow_table.cc — steering rules and the minimal receive-side parse they need.
#include "stack/dev/flow_table.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace xmit {
namespace {

constexpr uint32_t kEthHdrLen = 14;
constexpr uint8_t kIpProtoTcp = 6, kIpProtoUdp = 17;

// Loads kept in network byte order, as FlowKey stores them.
uint16_t load_ne16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
uint32_t load_ne32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

}  // namespace

bool flow_key_from_rx(const uint8_t* frame, uint32_t len, FlowKey* key) {
  if (len < kEthHdrLen + 20 || frame[12] != 0x08 || frame[13] != 0x00) return false;
  const uint8_t* ip = frame + kEthHdrLen;
  const uint32_t ihl = (ip[0] & 0x0fu) * 4;
  if ((ip[0] >> 4) != 4 || ihl < 20) return false;
  const uint8_t proto = ip[9];
  if (proto != kIpProtoTcp && proto != kIpProtoUdp) return false;
  if (((ip[6] << 8 | ip[7]) & 0x1fff) != 0) return false;  // no ports in a later fragment
  if (kEthHdrLen + ihl + 4 > len) return false;
  const uint8_t* l4 = ip + ihl;
  *key = FlowKey{.protocol = proto,
                 .local_addr = load_ne32(ip + 16),
                 .local_port = load_ne16(l4 + 2),
                 .remote_addr = load_ne32(ip + 12),
                 .remote_port = load_ne16(l4)};
  return true;
}

int FlowTable::add(const FlowKey& key) {
  if (std::find(rules_.begin(), rules_.end(), key) != rules_.end()) return -EEXIST;
  if (rules_.size() >= capacity_) return -ENOSPC;
  rules_.push_back(key);
  return 0;
}

int FlowTable::remove(const FlowKey& key) {
  auto it = std::find(rules_.begin(), rules_.end(), key);
  if (it == rules_.end()) return -ENOENT;
  *it = rules_.back();
  rules_.pop_back();
  return 0;
}

bool FlowTable::match(const FlowKey& pkt) const {
  for (const FlowKey& r : rules_) {
    if (r.protocol == pkt.protocol && r.local_port == pkt.local_port &&
        (r.local_addr == 0 || r.local_addr == pkt.local_addr) &&
        (r.remote_addr == 0 || r.remote_addr == pkt.remote_addr) &&
        (r.remote_port == 0 || r.remote_port == pkt.remote_port)) {
      return true;
    }
  }
  return false;
}

}  // namespace xmit
