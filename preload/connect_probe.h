// preload/connect_probe.h — what the kernel's connect() would choose for a TCP connection, asked
// without a packet sent: a throwaway kernel socket with TCP_FASTOPEN_CONNECT and
// TCP_FASTOPEN_NO_COOKIE connects. tcp_v4_connect() runs as for any connect() — the route,
// __inet_hash_connect()'s ephemeral port for the destination (its own TIME_WAITs skipped, its
// per-destination sequence advanced), secure_tcp_seq_and_ts_off()'s tsoffset for the 4-tuple — and
// tcp_fastopen_defer_connect() returns before tcp_connect() would send the SYN. TCP_TIMESTAMP then
// reads tcp_clock_ms() + tsoffset, getsockname() the port, and close() frees it (a SYN_SENT socket
// closes without a packet).
#pragma once

#include <cstdint>

#include "stack/base/byteorder.h"

namespace xmit {

// The kernel's port (host order) and timestamp offset for a connection from saddr to daddr:dport
// (dport host order). 0, or -errno: -EOPNOTSUPP when the kernel cannot defer the SYN (client Fast
// Open off: net.ipv4.tcp_fastopen without 1) or XMIT_TCP_KERNEL_PORTS=off, after which every call
// says so at once; -EADDRNOTAVAIL when the kernel's choice has another source address.
int kernel_connect_probe(be32 saddr, be32 daddr, uint16_t dport, uint16_t* sport, uint32_t* ts_off);

// XMIT_TCP_KERNEL_PORTS=off (engine open): every probe answers -EOPNOTSUPP.
void kernel_connect_probe_disable();

}  // namespace xmit
