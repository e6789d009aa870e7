// preload/kernel_connect.h — a TCP connection's kernel socket connects as the kernel's own connect()
// would, without a packet sent: with TCP_FASTOPEN_CONNECT and TCP_FASTOPEN_NO_COOKIE, tcp_v4_connect()
// runs as for any connect() — the route, __inet_hash_connect()'s ephemeral port for the destination
// (its own TIME_WAITs skipped, a bind bucket other connections made shared, its per-destination
// sequence advanced), secure_tcp_seq_and_ts_off()'s tsoffset for the 4-tuple, the socket in the
// established hash in SYN_SENT — and tcp_fastopen_defer_connect() returns before tcp_connect()
// would send the SYN. The socket then holds the 4-tuple in the kernel for as long as the fd is
// open: no kernel socket takes it, and a SYN_SENT socket closes without a packet. TCP_TIMESTAMP
// reads tcp_clock_ms() + tsoffset, getsockname() the port; the stack's connection carries both.
#pragma once

#include <cstdint>

#include "stack/base/byteorder.h"

namespace xmit {

// Connects the kernel socket `fd` to daddr:dport (host order) from saddr, its SYN deferred: 0 with
// the kernel's port (host order) and timestamp offset; 1 when the kernel's choice has another
// source address (the socket is disconnected again: the stack chooses); -EOPNOTSUPP when the SYN
// cannot be deferred (XMIT_TCP_KERNEL_PORTS=off, client Fast Open off, its blackhole detection on;
// said once in the log); else the kernel's connect() errno (EADDRNOTAVAIL: no port left, or a bound
// port's 4-tuple in use). Unless 0, the socket is closed as before, with the program's Fast Open
// options (`fastopen`: ShadowOps::kFastopenConnect | kFastopenNoCookie). `nonblock`: the socket is
// O_NONBLOCK (else it is for the connect() only, so that a SYN the kernel sends after all is never
// waited for; a program's fcntl(F_SETFL) from another thread in between would be undone).
int kernel_connect_deferred(int fd, be32 saddr, be32 daddr, uint16_t dport, bool nonblock, int fastopen,
                            uint16_t* sport, uint32_t* ts_off);

// A deferred connect undone: connect(AF_UNSPEC) takes a SYN_SENT socket back to closed without a
// packet (tcp_disconnect()), its port freed unless bound to a port the program asked for; the
// ECONNRESET it leaves in sk_err is read and cleared, and TCP_FASTOPEN_CONNECT / NO_COOKIE are set
// back to the program's (`fastopen`), so that a later connect() or send the kernel serves is not
// a deferred one. 0 or -errno.
int kernel_disconnect(int fd, int fastopen);

// At engine open: off (the variable, or the sysctls that let the kernel send the SYN after all —
// net.ipv4.tcp_fastopen without 1, a nonzero tcp_fastopen_blackhole_timeout_sec), with why (logged
// at the first connect(); nullptr: the variable, nothing logged).
void kernel_connect_disable(const char* why);

}  // namespace xmit
