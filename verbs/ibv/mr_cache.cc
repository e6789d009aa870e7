// verbs/ibv/mr_cache.cc — see mr_cache.h.
#include "verbs/ibv/mr_cache.h"

#include <algorithm>
#include <cerrno>

namespace xmit::ibv {

MrCache::MrCache(const IbvOps* ops, ibv_pd* pd, uint32_t max_entries, bool keep_unused)
    : ops_(ops), pd_(pd), keep_unused_(keep_unused), e_(max_entries) {}

MrCache::~MrCache() {
  for (Entry& x : e_)
    if (x.mr != nullptr) dereg(x);
}

void MrCache::dereg(Entry& x) {
  ops_->dereg_mr(x.mr);
  ++st_.deregistrations;
  x = Entry{};
}

// The interval lookup: a live entry whose pages cover [s, e). The table is small (a few dozen
// entries) and scanned in place.
int MrCache::find(uintptr_t s, uintptr_t e) const {
  for (size_t i = 0; i < e_.size(); ++i) {
    const Entry& x = e_[i];
    if (x.mr != nullptr && !x.stale && x.start <= s && e <= x.end) return int(i);
  }
  return -1;
}

// A free slot, or the least recently used unused entry deregistered (keep_unused); -1 if none.
int MrCache::free_slot() {
  int lru = -1;
  for (size_t i = 0; i < e_.size(); ++i) {
    const Entry& x = e_[i];
    if (x.mr == nullptr) return int(i);
    if (x.refs == 0 && (lru < 0 || x.last_use < e_[size_t(lru)].last_use)) lru = int(i);
  }
  if (lru >= 0) {
    dereg(e_[size_t(lru)]);
    ++st_.evictions;
  }
  return lru;
}

int MrCache::get(const uint8_t* p, size_t len) {
  const uintptr_t s = reinterpret_cast<uintptr_t>(p) & ~(kPage - 1);
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + len + kPage - 1) & ~(kPage - 1);
  if (int i = find(s, e); i >= 0) {
    Entry& x = e_[size_t(i)];
    ++x.refs;
    x.last_use = ++clock_;
    ++st_.hits;
    return i;
  }
  const int slot = free_slot();
  if (slot < 0) {
    ++st_.full;
    return -ENOSPC;
  }
  // Merge: the unused (kept) entries this range overlaps or touches join it (a buffer sent piece
  // by piece ends up under one registration), as long as the union stays under kMaxMerged. The
  // pages in between are mapped: the ranges are contiguous. Never an entry a WR still reads: the
  // union would pin its pages a second time and leave it behind, superseded, until that WR
  // completes — one more entry per send in flight, and a stream's prefix registered again at every
  // send. Then the range gets an entry of its own.
  uintptr_t ms = s, me = e;
  for (const Entry& x : e_) {
    if (x.mr == nullptr || x.stale || x.refs != 0 || x.start > me || x.end < ms) continue;
    const uintptr_t us = std::min(ms, x.start), ue = std::max(me, x.end);
    if (ue - us <= kMaxMerged) ms = us, me = ue;
  }
  ibv_mr* mr = ops_->reg_mr(pd_, reinterpret_cast<void*>(ms), me - ms, 0);  // the device only reads
  if (mr == nullptr && (ms != s || me != e)) {
    ms = s, me = e;
    mr = ops_->reg_mr(pd_, reinterpret_cast<void*>(s), e - s, 0);
  }
  if (mr == nullptr) {
    ++st_.reg_failures;
    return errno != 0 ? -errno : -EFAULT;
  }
  ++st_.registrations;
  // The entries now inside the new one are superseded: the merged (unused) ones gone at once; one
  // in use that the range itself covers at its last put() (its WRs keep the old lkey until then).
  for (size_t i = 0; i < e_.size(); ++i) {
    Entry& x = e_[i];
    if (int(i) == slot || x.mr == nullptr || x.stale || x.start < ms || x.end > me) continue;
    if (x.refs == 0) {
      ++st_.merges;
      dereg(x);
    } else {
      x.stale = true;
    }
  }
  e_[size_t(slot)] = Entry{.start = ms, .end = me, .mr = mr, .refs = 1, .last_use = ++clock_};
  return slot;
}

void MrCache::put(int idx) {
  Entry& x = e_[size_t(idx)];
  if (x.mr == nullptr || x.refs == 0) return;
  if (--x.refs == 0 && (!keep_unused_ || x.stale)) dereg(x);
}

int MrCache::invalidate(const void* addr, size_t len) {
  const uintptr_t s = reinterpret_cast<uintptr_t>(addr), e = s + len;
  int n = 0;
  for (Entry& x : e_) {
    if (x.mr == nullptr || x.start >= e || x.end <= s) continue;
    ++n;
    ++st_.invalidations;
    if (x.refs == 0) {
      dereg(x);
    } else {
      x.stale = true;
    }
  }
  return n;
}

uint32_t MrCache::entries() const {
  return uint32_t(std::count_if(e_.begin(), e_.end(), [](const Entry& x) { return x.mr != nullptr; }));
}

uint32_t MrCache::in_use() const {
  return uint32_t(std::count_if(e_.begin(), e_.end(), [](const Entry& x) { return x.mr != nullptr && x.refs != 0; }));
}

}  // namespace xmit::ibv
