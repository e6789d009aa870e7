// preload/log.cc — formatting and writing of log lines.
#include "preload/log.h"

#include <errno.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>

#include "preload/libc.h"

namespace xmit {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kNotice)};
std::atomic<int> g_fd{2};
}  // namespace

void log_setup(LogLevel level, int fd) {
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
  g_fd.store(fd, std::memory_order_relaxed);
}

bool log_enabled(LogLevel level) noexcept {
  return static_cast<int>(level) <= g_level.load(std::memory_order_relaxed);
}

void logf(LogLevel level, const char* fmt, ...) noexcept {
  if (!log_enabled(level)) return;
  int saved = errno;
  char buf[1024];
  int n = 0;
  if (level <= LogLevel::kWarn || level == LogLevel::kDebug) {
    n = snprintf(buf, sizeof buf, "xmit[%d]: %s: ", static_cast<int>(getpid()), log_level_name(level));
  } else {
    n = snprintf(buf, sizeof buf, "xmit[%d]: ", static_cast<int>(getpid()));
  }
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
  va_end(ap);
  size_t len = n + (m < 0 ? 0 : (m >= static_cast<int>(sizeof buf) - n - 1 ? sizeof buf - n - 2 : m));
  buf[len++] = '\n';
  const char* p = buf;
  while (len > 0) {
    ssize_t w = libc().write(g_fd.load(std::memory_order_relaxed), p, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    p += w;
    len -= w;
  }
  errno = saved;
}

}  // namespace xmit
