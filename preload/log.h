// preload/log.h — xmit's own log lines ("xmit: ..."), to stderr or XMIT_LOG's file. Formats into
// a stack buffer and writes with the real write(2): no allocation, usable in any thread.
#pragma once

#include "preload/config.h"

namespace xmit {

// Where lines go: fd 2 until log_setup() says otherwise.
void log_setup(LogLevel level, int fd);
bool log_enabled(LogLevel level) noexcept;
void logf(LogLevel level, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

}  // namespace xmit
