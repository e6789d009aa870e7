// preload/libc.cc — resolves the real glibc functions once, with dlsym(RTLD_NEXT).
#include "preload/libc.h"

#include <dlfcn.h>

namespace xmit::internal {

std::atomic<const Libc*> g_libc{nullptr};

namespace {
Libc g_table;
std::atomic<bool> g_resolving{false};

void fill(Libc& t) noexcept {
#define XMIT_LIBC_RESOLVE(name) \
  t.name = reinterpret_cast<decltype(t.name)>(dlsym(RTLD_NEXT, #name));
  XMIT_LIBC_FUNCTIONS(XMIT_LIBC_RESOLVE)
#undef XMIT_LIBC_RESOLVE
}
}  // namespace

const Libc& resolve_libc() noexcept {
  if (const Libc* l = g_libc.load(std::memory_order_acquire)) return *l;
  if (g_resolving.exchange(true, std::memory_order_acq_rel)) {
    // Another thread (or this thread, interrupted by a signal) is filling the table: resolve
    // into a private copy rather than wait, so that nothing here can deadlock.
    thread_local Libc private_table;
    fill(private_table);
    return private_table;
  }
  fill(g_table);
  g_libc.store(&g_table, std::memory_order_release);
  return g_table;
}

}  // namespace xmit::internal
