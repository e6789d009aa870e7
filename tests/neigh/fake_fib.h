// tests/neigh/fake_fib.h — a deterministic Fib (routes and kernel neighbour entries set by the
// test, calls recorded) and NeighOps that records transmitted frames.
#pragma once

#include <cerrno>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "stack/neigh/fib.h"
#include "stack/neigh/neighbour.h"
#include "stack/skb/sk_buff.h"

namespace xmit::testing {

class FakeFib : public Fib {
 public:
  int route_output(const Flowi4& fl4, Rtable* rt) override {
    ++route_calls;
    auto it = routes.find(fl4.daddr);
    if (it == routes.end()) return -ENETUNREACH;
    if (it->second.first != 0) return it->second.first;
    *rt = it->second.second;
    return 0;
  }
  int neigh_lookup(int ifindex, be32 ip, NeighInfo* out) override {
    ++lookup_calls;
    auto it = kernel.find({ifindex, ip});
    if (it == kernel.end()) return -ENOENT;
    *out = it->second;
    return 0;
  }
  int neigh_resolve(int ifindex, be32 ip) override {
    resolves.emplace_back(ifindex, ip);
    return resolve_err;
  }
  int neigh_parms(int ifindex, NeighParms* out) override {
    if (ifindex != kIfindex) return -ENODEV;
    *out = parms;
    return 0;
  }
  uint64_t generation() const override { return gen; }

  static constexpr int kIfindex = 7;
  std::map<be32, std::pair<int, Rtable>> routes;    // daddr -> (error, route)
  std::map<std::pair<int, be32>, NeighInfo> kernel;  // the kernel's neighbour table
  std::vector<std::pair<int, be32>> resolves;
  int resolve_err = 0;
  NeighParms parms;
  uint64_t gen = 1;
  int route_calls = 0;
  int lookup_calls = 0;
};

// Records each frame's bytes and frees the skb, as a device would after sending it.
class RecordingOps : public NeighOps {
 public:
  const uint8_t* dev_addr(int ifindex) override { return ifindex == FakeFib::kIfindex ? mac.data() : nullptr; }
  // One frame, or a GSO packet's segments linked through next (one call).
  int queue_xmit(int ifindex, sk_buff* skb) override {
    ++calls;
    while (skb != nullptr) {
      sk_buff* next = skb->next;
      skb->next = nullptr;
      std::vector<uint8_t> bytes(skb->len);
      if (skb_copy_bits(skb, 0, bytes.data(), skb->len) != 0) bytes.clear();
      frames.push_back(std::move(bytes));
      ifindexes.push_back(ifindex);
      kfree_skb(skb);
      skb = next;
    }
    return 0;
  }
  MacAddr mac{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01};
  std::vector<std::vector<uint8_t>> frames;
  std::vector<int> ifindexes;
  int calls = 0;  // queue_xmit() calls
};

}  // namespace xmit::testing
