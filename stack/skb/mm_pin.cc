// stack/skb/mm_pin.cc — see mm_pin.h.
#include "stack/skb/mm_pin.h"

#include <errno.h>
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

namespace xmit {

namespace {

constexpr unsigned kPageShift = 12;

std::atomic<uint64_t> g_locked_vm{0};  // pages

// capget(2) of the calling thread: the kernel's capable() looks at the task's effective set.
bool real_cap_ipc_lock() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &hdr, data) != 0) return false;
  return (data[CAP_IPC_LOCK / 32].effective & (1u << (CAP_IPC_LOCK % 32))) != 0;
}

uint64_t real_memlock() {
  rlimit r{};
  if (::getrlimit(RLIMIT_MEMLOCK, &r) != 0) return RLIM_INFINITY;
  return r.rlim_cur;
}

std::atomic<bool (*)()> g_cap{real_cap_ipc_lock};
std::atomic<uint64_t (*)()> g_memlock{real_memlock};

}  // namespace

int mm_account_pinned_pages(MmPin* mmp, size_t size) {
  if (size == 0 || g_cap.load(std::memory_order_relaxed)()) return 0;
  const uint64_t rlim = g_memlock.load(std::memory_order_relaxed)();
  if (rlim == RLIM_INFINITY) return 0;
  const uint64_t num_pg = (size >> kPageShift) + 2;  // kernel: "worst case"
  const uint64_t max_pg = rlim >> kPageShift;
  uint64_t old_pg = g_locked_vm.load(std::memory_order_relaxed);
  uint64_t new_pg;
  do {
    new_pg = old_pg + num_pg;
    if (new_pg > max_pg) return -ENOBUFS;
  } while (!g_locked_vm.compare_exchange_weak(old_pg, new_pg, std::memory_order_relaxed));
  mmp->num_pg += num_pg;
  return 0;
}

void mm_unaccount_pinned_pages(MmPin* mmp) {
  if (mmp->num_pg == 0) return;
  g_locked_vm.fetch_sub(mmp->num_pg, std::memory_order_relaxed);
  mmp->num_pg = 0;
}

uint64_t mm_pinned_pages() { return g_locked_vm.load(std::memory_order_relaxed); }

void mm_pin_set_limits(const MmPinLimits& l) {
  g_cap.store(l.cap_ipc_lock != nullptr ? l.cap_ipc_lock : real_cap_ipc_lock);
  g_memlock.store(l.memlock != nullptr ? l.memlock : real_memlock);
}

}  // namespace xmit
