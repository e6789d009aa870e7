// stack/skb/mm_pin.h — MSG_ZEROCOPY's charge against RLIMIT_MEMLOCK: the pages a send's user
// buffer spans, held from the send until its completion. Kernel counterparts: struct mmpin,
// mm_account_pinned_pages() and mm_unaccount_pinned_pages() (include/linux/skbuff.h,
// net/core/skbuff.c), charged to user->locked_vm.
//
// The kernel charges the user (uid) across all its processes; here the charge is this process's
// own (other processes' pinned pages are not seen), which equals the kernel's whenever this
// process is the user's only one pinning memory.
#pragma once

#include <cstddef>
#include <cstdint>

namespace xmit {

struct MmPin {
  uint64_t num_pg = 0;  // kernel: mmp->num_pg (charged pages)
};

// kernel: mm_account_pinned_pages(): 0 and nothing charged with CAP_IPC_LOCK, for size 0 or an
// infinite RLIMIT_MEMLOCK; else (size >> PAGE_SHIFT) + 2 pages ("worst case") more on mmp, or
// -ENOBUFS when the user's charge would pass the limit.
int mm_account_pinned_pages(MmPin* mmp, size_t size);
// kernel: mm_unaccount_pinned_pages(): gives back what mmp holds.
void mm_unaccount_pinned_pages(MmPin* mmp);
// The process's charge, in pages (kernel: user->locked_vm's part from MSG_ZEROCOPY).
uint64_t mm_pinned_pages();

// What the check reads (tests replace them): capable(CAP_IPC_LOCK) of the calling thread, and
// RLIMIT_MEMLOCK's soft limit in bytes (RLIM_INFINITY: no limit). nullptr restores the real ones.
struct MmPinLimits {
  bool (*cap_ipc_lock)() = nullptr;
  uint64_t (*memlock)() = nullptr;
};
void mm_pin_set_limits(const MmPinLimits& l);

}  // namespace xmit
