// tests/stack/count_new.cc — replaces every form of global operator new/delete with malloc/free
// and counts the news. In its own translation unit so no caller inlines the pairing.
#include "tests/stack/count_new.h"

#include <cstdlib>
#include <new>

namespace {
size_t g_news = 0;  // the binaries using it are single-threaded
}  // namespace

namespace xmit::testing_support {
size_t operator_new_calls() { return g_news; }
}  // namespace xmit::testing_support

void* operator new(size_t n) {
  ++g_news;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) { return operator new(n); }
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  ++g_news;
  return std::malloc(n ? n : 1);
}
void* operator new[](size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
