// verbs/ibv/mr_cache.h — registrations of the program's own memory (MSG_ZEROCOPY payloads) so the
// NIC reads it in place: one ibv_mr per page-aligned address range, looked up by interval,
// refcounted by the send WRs that read it. Counterparts: the kernel pins a send's user pages per
// send (iov_iter_get_pages2() in __zerocopy_sg_from_iter()); libfabric's MR cache (ofi_mr_cache)
// and UCX's rcache keep registrations across sends behind a memory monitor.
//
// Safety: a registration pins the pages it covered when it was made. Kept after its last use, it
// would go on naming those pages after a munmap()/mremap()/madvise(MADV_DONTNEED)/brk shrink (glibc's
// free() of a large chunk is a munmap() that cannot be interposed), and a later send from a new
// mapping at the same address would read the old pages. So by default (keep_unused = false) an
// entry is deregistered when the last WR reading it completes: safe by construction, as the
// kernel's per-send pinning. keep_unused = true keeps unused entries (LRU, bounded) and is only
// safe with a monitor that calls invalidate() for every unmap of the range before the address can
// be reused (userfaultfd UFFD_EVENT_UNMAP/REMOVE/REMAP, as libfabric's uffd monitor): none is built
// yet, so the backend never turns it on; tests do.
//
// Error convention: 0 / an index on success, -errno on failure. Threading: as IbvNetdev, one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "verbs/ibv/ibv_ops.h"

namespace xmit::ibv {

struct MrCacheStats {
  uint64_t hits = 0;           // get() found an entry covering the range
  uint64_t registrations = 0;  // reg_mr() calls that succeeded
  uint64_t reg_failures = 0;   // reg_mr() refused (unmapped memory, RLIMIT_MEMLOCK): the caller copies
  uint64_t merges = 0;         // unused entries a registration took in (overlapping or adjacent)
  uint64_t deregistrations = 0;
  uint64_t evictions = 0;      // unused entries deregistered to make room (keep_unused)
  uint64_t full = 0;           // get() found every entry in use: -ENOSPC
  uint64_t invalidations = 0;  // entries invalidate() removed or marked stale
};

class MrCache {
 public:
  static constexpr uintptr_t kPage = 4096;
  // A merge never grows a registration past this (a long-lived stream would otherwise pin its
  // whole heap through one entry).
  static constexpr size_t kMaxMerged = size_t{64} << 20;

  // `max_entries` registrations at most (the table is allocated here, never on a lookup).
  MrCache(const IbvOps* ops, ibv_pd* pd, uint32_t max_entries, bool keep_unused = false);
  // Deregisters every entry. The owner drains the send queue first (no WR may still read one).
  ~MrCache();
  MrCache(const MrCache&) = delete;
  MrCache& operator=(const MrCache&) = delete;

  // An entry covering [p, p + len) with one more reference (the caller's WR reads it): found, or
  // registered for the range rounded out to pages, merged with unused (kept) entries it overlaps
  // or touches when that stays under kMaxMerged — never with one in use, which keeps its own
  // registration. Returns its index, or -ENOSPC (every entry in use), -errno
  // of reg_mr (EFAULT: memory not mapped). No allocation and no system call on a hit.
  int get(const uint8_t* p, size_t len);
  // Drops a reference get() gave. At the last one the entry is deregistered, unless keep_unused
  // (then it stays, least recently used first out), or it was superseded (a later range covering
  // it) or invalidated while in use (always deregistered then).
  void put(int idx);
  uint32_t lkey(int idx) const { return e_[size_t(idx)].mr->lkey; }

  // Memory [addr, addr + len) is being unmapped or freed: entries overlapping it are no longer
  // found; an unused one is deregistered now, one a WR still reads when its last reference goes.
  // Returns how many entries it touched. What a memory monitor calls.
  int invalidate(const void* addr, size_t len);

  uint32_t entries() const;        // registrations held (in use or kept)
  uint32_t in_use() const;         // entries with references
  uint32_t refs(int idx) const { return e_[size_t(idx)].refs; }
  const MrCacheStats& stats() const { return st_; }

 private:
  struct Entry {
    uintptr_t start = 0, end = 0;  // page-aligned [start, end); mr == nullptr: free slot
    ibv_mr* mr = nullptr;
    uint32_t refs = 0;
    uint64_t last_use = 0;  // LRU clock
    bool stale = false;     // superseded or invalidated: not found, deregistered at its last put()
  };
  int find(uintptr_t s, uintptr_t e) const;
  int free_slot();
  void dereg(Entry& x);

  const IbvOps* ops_;
  ibv_pd* pd_;
  bool keep_unused_;
  std::vector<Entry> e_;
  uint64_t clock_ = 0;
  MrCacheStats st_;
};

}  // namespace xmit::ibv
