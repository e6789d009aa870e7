// preload/engine.h — the process's stack instance: the queue on XMIT_IFACE (AF_XDP sockets on its RX queues, or an
// ibverbs raw-packet QP on its RDMA device or the software verbs device: Runtime::backend; in a
// pcap recorder when XMIT_PCAP is set), the route/neighbour source (rtnetlink) and the UdpStack
// over them. Opened on the first socket xmit serves; if it cannot open, one error line says why and
// what to do, and every socket passes through to the kernel from then on.
#pragma once

#include "preload/runtime.h"
#include "stack/stream/tcp_stack.h"
#include "stack/udp/udp_sock.h"

namespace xmit {

// The stack, opened on first use; nullptr (with *why set) when it could not be opened.
// Thread-safe. The engine is never torn down: its AF_XDP socket and XDP link (or verbs objects) close at exit.
UdpStack* engine_udp(const Runtime& rt, const char** why) noexcept;

// The TCP stack on the same instance (its mutex is the UdpStack's), as engine_udp().
TcpStack* engine_tcp(const Runtime& rt, const char** why) noexcept;

// A thread is about to sleep on the device's wait fd (+1) / woke (-1): the engine's progress
// thread then leaves the receive ring to it (it would otherwise take the frame that thread waits
// for) and runs only the TCP timers.
void engine_rx_waiter(int delta) noexcept;

// net.core.busy_poll as this process sees it (XMIT_BUSY_POLL overrides it), µs: how long poll,
// select and epoll_wait busy-poll before they sleep. Read when the stack opens; 0 before.
uint32_t engine_busy_poll_us() noexcept;

// The kernel shadow socket operations, through the real glibc functions.
ShadowOps* engine_shadow() noexcept;

// The interface's IPv4 address (SIOCGIFADDR), or 0.
be32 iface_addr(const std::string& ifname) noexcept;

// Field `n` (0-based) of a sysctl's numbers (tcp_rmem / tcp_wmem: min, default, max), or dflt.
long read_sysctl_field(const char* path, int n, long dflt);

}  // namespace xmit
