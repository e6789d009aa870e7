// stack/base/sk_shutdown.h — the sk->sk_shutdown bits, shared by the IPv4 socket state
// (stack/ipv4/inet_sock.h) and TCP's (stack/tcp/tcp_sock.h). kernel: include/net/sock.h
// (shutdown(how) sets how + 1).
#pragma once

#include <cstdint>

namespace xmit {

inline constexpr uint8_t RCV_SHUTDOWN = 1;
inline constexpr uint8_t SEND_SHUTDOWN = 2;
inline constexpr uint8_t SHUTDOWN_MASK = 3;

}  // namespace xmit
