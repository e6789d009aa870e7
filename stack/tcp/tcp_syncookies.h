// stack/tcp/tcp_syncookies.h — SYN cookies: a listener whose request queue is full answers a SYN
// with a SYN-ACK whose ISN encodes the connection (keeping no state), and rebuilds the request
// from the ACK that echoes it. Kernel counterparts: net/ipv4/syncookies.c
// (__cookie_v4_init_sequence(), __cookie_v4_check(), cookie_init_timestamp(),
// cookie_timestamp_decode(), cookie_v4_check()), include/net/tcp.h (tcp_cookie_time(),
// tcp_synq_overflow(), tcp_synq_no_recent_overflow(), MAX_SYNCOOKIE_AGE).
//
// The cookie, as the kernel's secure_tcp_syn_cookie():
//   ISN = H0(saddr, daddr, sport, dport) + peer's ISN + (count << 24)
//         + ((H1(saddr, daddr, sport, dport, count) + mssind) mod 2^24)
// where count is the minute of the clock (tcp_cookie_time()), mssind the index of the peer's MSS
// rounded down in msstab {536, 1300, 1440, 1460}, and H0/H1 SipHash-2-4 (siphash_4u32(), the
// kernel's PRF) under two 128-bit keys drawn at random once per process (the kernel's
// syncookie_secret[2], once per boot). A cookie is valid while count has advanced by less than
// MAX_SYNCOOKIE_AGE (2): between 1 and 2 minutes. With timestamps, the SYN-ACK's TSval carries the
// peer's window scale, SACK and ECN in its 6 low bits, and the ACK's TSecr gives them back.
// Simplified: ECN is never encoded (no ECN negotiation here); net.ipv4.tcp_timestamps, tcp_sack
// and tcp_window_scaling are taken as 1 (the stack always offers them); no IP options are saved
// from the ACK; reuseport groups keep one overflow stamp per listener (the kernel shares one per
// group), which is the same here because a 4-tuple always reaches the same member.
#pragma once

#include <cstdint>

#include "stack/base/siphash.h"
#include "stack/tcp/tcp_conn.h"
#include "stack/tcp/tcp_sock.h"

namespace xmit {

inline constexpr uint32_t COOKIEBITS = 24;  // kernel: "Upper bits store count"
inline constexpr uint32_t COOKIEMASK = (1u << COOKIEBITS) - 1;
inline constexpr uint32_t MAX_SYNCOOKIE_AGE = 2;                      // kernel: include/net/tcp.h
inline constexpr uint64_t TCP_SYNCOOKIE_PERIOD_MS = 60 * 1000;        // 60 * HZ
inline constexpr uint64_t TCP_SYNCOOKIE_VALID_MS = MAX_SYNCOOKIE_AGE * TCP_SYNCOOKIE_PERIOD_MS;
// The TSval bits (kernel: TS_OPT_WSCALE_MASK, TS_OPT_SACK, TS_OPT_ECN, TSBITS)
inline constexpr uint32_t TS_OPT_WSCALE_MASK = 0xf;  // 0xf: the SYN had no window scale option
inline constexpr uint32_t TS_OPT_SACK = 1u << 4;
inline constexpr uint32_t TS_OPT_ECN = 1u << 5;
inline constexpr uint32_t TSBITS = 6;
// kernel: msstab[] — "Table must be sorted."
inline constexpr uint16_t msstab[] = {536, 1300, 1440, 1460};

// kernel: syncookie_secret[2] — the owner draws it at random (a per-process secret); tests may
// set any value.
struct tcp_syncookie_secret {
  siphash_key_t key[2];
};

// kernel: tcp_cookie_time() — the cookie's count: minutes of the clock (jiffies / (60 * HZ)).
inline uint32_t tcp_cookie_time(uint64_t now_us) {
  return static_cast<uint32_t>(now_us / 1000 / TCP_SYNCOOKIE_PERIOD_MS);
}

// kernel: __cookie_v4_init_sequence() — the cookie ISN for a SYN from saddr:sport (the peer) to
// daddr:dport (us) with sequence number `seq`; *mssp, the peer's MSS, is rounded down to the
// msstab entry the cookie encodes. Addresses as on the wire, ports in host order.
uint32_t cookie_v4_init_sequence_core(const tcp_syncookie_secret* secret, be32 saddr, be32 daddr, uint16_t sport,
                                      uint16_t dport, uint32_t seq, uint16_t* mssp, uint64_t now_us);
// kernel: __cookie_v4_check() — for an ACK from saddr:sport with sequence `seq` acknowledging
// cookie + 1: the MSS the cookie encodes, or 0 when it is not a valid cookie of the last
// MAX_SYNCOOKIE_AGE minutes.
int cookie_v4_check_core(const tcp_syncookie_secret* secret, be32 saddr, be32 daddr, uint16_t sport, uint16_t dport,
                         uint32_t seq, uint32_t cookie, uint64_t now_us);
// kernel: cookie_init_timestamp() — the SYN-ACK's timestamp (ms, before ts_off) with the request's
// options in its low TSBITS bits, never later than now.
uint32_t cookie_init_timestamp(const tcp_request_sock& req, uint64_t now_us);
// kernel: cookie_timestamp_decode() — the options an ACK's TSecr (ts_off already taken off)
// carries, into `opt`; without a timestamp, none. false: an option the host has disabled.
bool cookie_timestamp_decode(tcp_options_received* opt);

// kernel: tcp_synq_overflow() — the listener's queue overflowed now (stamped at most once a second).
void tcp_synq_overflow(tcp_sock* listener);
// kernel: tcp_synq_no_recent_overflow() — no overflow within TCP_SYNCOOKIE_VALID: ACKs are not
// checked as cookies.
bool tcp_synq_no_recent_overflow(const tcp_sock* listener);

// kernel: cookie_v4_check() + tcp_get_cookie_sock() — an ACK (no SYN) for a listener that matched no
// request: the listener itself when it is not checked as a cookie or is no valid cookie (the caller
// answers it as for no socket: a reset; SyncookiesFailed counted), nullptr when the cookie was valid
// but no child could be made (the accept queue full: dropped, ListenOverflows), else the child,
// rebuilt from the cookie and the ACK's timestamp, hashed and on the accept queue, in SYN_RECV for
// the caller to hand the ACK to (tcp_child_process()).
tcp_sock* cookie_v4_check(tcp_sock* listener, sk_buff* skb, uint32_t dst_mtu, TcpOps* ops);

}  // namespace xmit
