// preload/tcp_repair.h — an established connection moved from the stack into the kernel socket
// behind its fd (TCP_REPAIR; needs CAP_NET_ADMIN). Used at fork() (engine.cc's LibcShadow).
#pragma once

#include "stack/sock/tcp_repair.h"

namespace xmit {

// The kernel socket `fd` (CLOSE, unbound or bound to st's local address) becomes the connection
// `st` describes, ESTABLISHED, with its unread, unacknowledged and unsent bytes. 0: the kernel owns
// the connection (*step is nullptr, or names what failed after that point: bytes lost); -errno:
// *step failed and the socket is closed again (the stack keeps the connection).
int tcp_repair_into(int fd, const TcpRepairState& st, const char** step);

}  // namespace xmit
