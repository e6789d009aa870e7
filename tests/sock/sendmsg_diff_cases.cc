// tests/sock/sendmsg_diff_cases.cc — the differential table: msghdr/sendto arguments, flags and
// control messages, each with the errno Linux gives (with and without CAP_NET_RAW/CAP_NET_ADMIN).
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <linux/net_tstamp.h>

#include <climits>
#include <cstdint>
#include <cstring>

#include "tests/sock/diff_harness.h"

namespace xmit::test {
namespace {

// A kernel address: access_ok() fails for it whatever the paging mode.
void* const kKernelPtr = reinterpret_cast<void*>(0xffff888000000000ull);
uint8_t g_big[1 << 17];  // .bss: far below the top of user space

using M = Msg&;
using D = const sockaddr_in&;

void ctl(M m, const Ctl& c) { m.set_ctl(c); }

// One cmsg, everything else default.
std::function<void(M, D)> one(int level, int type, int v) {
  return [=](M m, D) { ctl(m, Ctl().val(level, type, v)); };
}
std::function<void(M, D)> one_u32(int level, int type, uint32_t v) {
  return [=](M m, D) { ctl(m, Ctl().val(level, type, v)); };
}
std::function<void(M, D)> opts(std::vector<uint8_t> o) {
  return [=](M m, D) { ctl(m, Ctl().add(SOL_IP, IP_RETOPTS, o.data(), o.size())); };
}
std::function<void(M, D)> nothing() {
  return [](M, D) {};
}

constexpr int kScmTsOptId = 81;
constexpr int kScmDevmemDmabuf = 79;
constexpr int kSoTimestampingNew = 65;
constexpr int kIpProtocol = 52;  // IP_PROTOCOL (Linux 6.3+)

std::vector<Case> make_cases() {
  const auto S = Api::kSendmsg;
  const auto T = Api::kSendto;
  std::vector<Case> v = {
      // ---- the msghdr: __copy_msghdr(), import_iovec() ----
      {"plain", S, kNone, 0, nothing(), 0, -1},
      {"namelen_200_is_clamped", S, kNone, 0, [](M m, D) { m.msg.msg_namelen = 200; }, 0, -1},
      {"namelen_negative", S, kNone, 0, [](M m, D) { m.msg.msg_namelen = 0x80000000u; }, EINVAL, -1},
      {"namelen_8", S, kNone, 0, [](M m, D) { m.msg.msg_namelen = 8; }, EINVAL, -1},
      {"namelen_0_with_name", S, kNone, 0, [](M m, D) { m.msg.msg_namelen = 0; }, EDESTADDRREQ, -1},
      {"name_null_namelen_16", S, kNone, 0, [](M m, D) { m.msg.msg_name = nullptr; }, EDESTADDRREQ, -1},
      {"name_null_namelen_negative", S, kNone, 0,
       [](M m, D) { m.msg.msg_name = nullptr; m.msg.msg_namelen = 0x80000000u; }, EDESTADDRREQ, -1},
      {"name_kernel_pointer", S, kNone, 0, [](M m, D) { m.msg.msg_name = kKernelPtr; }, EFAULT, -1},
      {"family_inet6", S, kNone, 0, [](M m, D) { m.name.ss_family = AF_INET6; }, EAFNOSUPPORT, -1},
      {"family_unspec", S, kNone, 0, [](M m, D) { m.name.ss_family = AF_UNSPEC; }, 0, -1},
      {"port_0", S, kNone, 0, [](M m, D) { reinterpret_cast<sockaddr_in*>(&m.name)->sin_port = 0; }, EINVAL, -1},
      {"connected_no_name", S, kConnected, 0, [](M m, D) { m.msg.msg_name = nullptr; }, 0, -1},
      {"iovlen_1025", S, kNone, 0, [](M m, D) { m.msg.msg_iovlen = 1025; }, EMSGSIZE, -1},
      {"iovlen_1024", S, kNone, 0,
       [](M m, D) {
         m.iov.assign(1024, iovec{g_big, 1});
         m.msg.msg_iov = m.iov.data();
         m.msg.msg_iovlen = 1024;
       },
       0, -1},
      {"iov_null_iovlen_1", S, kNone, 0, [](M m, D) { m.msg.msg_iov = nullptr; }, EFAULT, -1},
      {"iov_null_iovlen_2", S, kNone, 0, [](M m, D) { m.msg.msg_iov = nullptr; m.msg.msg_iovlen = 2; }, EFAULT, -1},
      {"iov_null_iovlen_0", S, kNone, 0, [](M m, D) { m.msg.msg_iov = nullptr; m.msg.msg_iovlen = 0; }, 0, -1},
      {"iov_len_negative_one_seg", S, kNone, 0, [](M m, D) { m.iov[0].iov_len = SIZE_MAX; }, EINVAL, -1},
      {"iov_len_negative_second_seg", S, kNone, 0,
       [](M m, D) {
         m.iov.assign({iovec{g_big, 4}, iovec{g_big, size_t{1} << 63}});
         m.msg.msg_iov = m.iov.data();
         m.msg.msg_iovlen = 2;
       },
       EINVAL, -1},
      {"iov_kernel_base_then_negative_len", S, kNone, 0,
       [](M m, D) {
         m.iov.assign({iovec{kKernelPtr, 4}, iovec{g_big, SIZE_MAX}});
         m.msg.msg_iov = m.iov.data();
         m.msg.msg_iovlen = 2;
       },
       EINVAL, -1},
      {"iov_kernel_base", S, kNone, 0, [](M m, D) { m.iov[0].iov_base = kKernelPtr; }, EFAULT, -1},
      {"iov_one_seg_len_2e62_clamped", S, kNone, 0,
       [](M m, D) { m.iov[0] = iovec{g_big, size_t{1} << 62}; }, EMSGSIZE, -1},
      {"iov_two_segs_first_2e62_access_ok", S, kNone, 0,
       [](M m, D) {
         m.iov.assign({iovec{g_big, size_t{1} << 62}, iovec{g_big, 1}});
         m.msg.msg_iov = m.iov.data();
         m.msg.msg_iovlen = 2;
       },
       EFAULT, -1},
      {"iov_total_80000", S, kNone, 0,
       [](M m, D) {
         m.iov.assign({iovec{g_big, 40000}, iovec{g_big, 40000}});
         m.msg.msg_iov = m.iov.data();
         m.msg.msg_iovlen = 2;
       },
       EMSGSIZE, -1},
      {"iov_two_segs_int_max_clamped", S, kNone, 0,
       [](M m, D) {
         m.iov.assign({iovec{g_big, INT_MAX}, iovec{g_big, INT_MAX}});
         m.msg.msg_iov = m.iov.data();
         m.msg.msg_iovlen = 2;
       },
       EMSGSIZE, -1},
      {"iov_null_base_len_0_multi", S, kNone, 0,
       [](M m, D) {
         m.iov.assign({iovec{g_big, 4}, iovec{nullptr, 0}});
         m.msg.msg_iov = m.iov.data();
         m.msg.msg_iovlen = 2;
       },
       0, -1},
      {"iov_kernel_base_len_0_multi", S, kNone, 0,
       [](M m, D) {
         m.iov.assign({iovec{g_big, 4}, iovec{kKernelPtr, 0}});
         m.msg.msg_iov = m.iov.data();
         m.msg.msg_iovlen = 2;
       },
       EFAULT, -1},
      {"order_namelen_negative_before_iovlen", S, kNone, 0,
       [](M m, D) { m.msg.msg_namelen = 0x80000000u; m.msg.msg_iovlen = 5000; }, EINVAL, -1},
      {"order_iovlen_before_controllen", S, kNone, 0,
       [](M m, D) { m.msg.msg_iovlen = 5000; m.msg.msg_controllen = size_t{1} << 40; }, EMSGSIZE, -1},
      // ---- the control buffer: ____sys_sendmsg() ----
      {"controllen_over_int_max", S, kNone, 0,
       [](M m, D) { m.msg.msg_control = m.ctl; m.msg.msg_controllen = size_t{INT_MAX} + 1; }, ENOBUFS, -1},
      {"controllen_int_max", S, kNone, 0,
       [](M m, D) { m.msg.msg_control = m.ctl; m.msg.msg_controllen = INT_MAX; }, ENOBUFS, -1},
      {"controllen_optmem_max", S, kNone, 0,
       [](M m, D) { m.msg.msg_control = g_big; m.msg.msg_controllen = 131072; }, ENOBUFS, -1},
      {"control_null_controllen_16", S, kNone, 0,
       [](M m, D) { m.msg.msg_control = nullptr; m.msg.msg_controllen = 16; }, EFAULT, -1},
      {"control_null_controllen_8", S, kNone, 0,
       [](M m, D) { m.msg.msg_control = nullptr; m.msg.msg_controllen = 8; }, EFAULT, -1},
      {"control_null_controllen_0", S, kNone, 0,
       [](M m, D) { m.msg.msg_control = nullptr; m.msg.msg_controllen = 0; }, 0, -1},
      {"control_kernel_pointer", S, kNone, 0,
       [](M m, D) { m.msg.msg_control = kKernelPtr; m.msg.msg_controllen = 24; }, EFAULT, -1},
      {"controllen_8_junk_ignored", S, kNone, 0, [](M m, D) { ctl(m, Ctl().junk(8, 0xAB)); }, 0, -1},
      {"controllen_1000_zeroes", S, kNone, 0,
       [](M m, D) { m.msg.msg_control = m.ctl; m.msg.msg_controllen = 1000; }, EINVAL, -1},
      // ---- flags: __sys_sendmsg(), udp_sendmsg() ----
      {"msg_oob", S, kNone, MSG_OOB, nothing(), EOPNOTSUPP, -1},
      {"msg_oob_and_too_long", S, kNone, MSG_OOB,
       [](M m, D) { m.iov[0] = iovec{g_big, 70000}; }, EMSGSIZE, -1},
      {"msg_oob_and_bad_cmsg", S, kNone, MSG_OOB, one(SOL_IP, IP_TTL, 0), EOPNOTSUPP, -1},
      {"msg_cmsg_compat_sendmsg", S, kNone, 0x80000000u, nothing(), EINVAL, -1},
      {"msg_cmsg_compat_before_iovlen", S, kNone, 0x80000000u,
       [](M m, D) { m.msg.msg_iovlen = 5000; }, EINVAL, -1},
      {"msg_splice_pages_cleared", S, kNone, 0x8000000, nothing(), 0, -1},
      {"msg_flags_field_ignored", S, kNone, 0, [](M m, D) { m.msg.msg_flags = MSG_OOB; }, 0, -1},
      {"bad_family_before_bad_cmsg", S, kNone, 0,
       [](M m, D) { m.name.ss_family = AF_INET6; ctl(m, Ctl().val(SOL_IP, IP_TTL, 0)); }, EAFNOSUPPORT, -1},
      {"edestaddrreq_before_bad_cmsg", S, kNone, 0,
       [](M m, D) { m.msg.msg_name = nullptr; ctl(m, Ctl().val(SOL_IP, IP_TTL, 0)); }, EDESTADDRREQ, -1},
      // ---- sendto(2): __sys_sendto() ----
      {"sendto_plain", T, kNone, 0, nothing(), 0, -1},
      {"sendto_addrlen_200", T, kNone, 0, [](M m, D) { m.addrlen = 200; }, EINVAL, -1},
      {"sendto_addrlen_128", T, kNone, 0, [](M m, D) { m.addrlen = 128; }, 0, -1},
      {"sendto_addrlen_negative", T, kNone, 0, [](M m, D) { m.addrlen = -1; }, EINVAL, -1},
      {"sendto_addrlen_0", T, kNone, 0, [](M m, D) { m.addrlen = 0; }, EINVAL, -1},
      {"sendto_addrlen_8", T, kNone, 0, [](M m, D) { m.addrlen = 8; }, EINVAL, -1},
      {"sendto_addr_null_addrlen_50", T, kNone, 0,
       [](M m, D) { m.addr = nullptr; m.addrlen = 50; }, EDESTADDRREQ, -1},
      {"sendto_addr_kernel_pointer", T, kNone, 0,
       [](M m, D) { m.addr = static_cast<const sockaddr*>(kKernelPtr); }, EFAULT, -1},
      {"sendto_null_buf_len_0", T, kNone, 0, [](M m, D) { m.buf = nullptr; m.len = 0; }, 0, -1},
      {"sendto_len_70000", T, kNone, 0, [](M m, D) { m.buf = g_big; m.len = 70000; }, EMSGSIZE, -1},
      {"sendto_len_size_max_clamped", T, kNone, 0, [](M m, D) { m.buf = g_big; m.len = SIZE_MAX; }, EMSGSIZE, -1},
      {"sendto_kernel_buf", T, kNone, 0, [](M m, D) { m.buf = kKernelPtr; }, EFAULT, -1},
      {"sendto_kernel_buf_before_bad_addrlen", T, kNone, 0,
       [](M m, D) { m.buf = kKernelPtr; m.addrlen = 200; }, EFAULT, -1},
      {"sendto_msg_cmsg_compat_allowed", T, kNone, 0x80000000u, nothing(), 0, -1},
      {"sendto_msg_oob", T, kNone, MSG_OOB, nothing(), EOPNOTSUPP, -1},
      {"send_connected", T, kConnected, 0, [](M m, D) { m.addr = nullptr; m.addrlen = 0; }, 0, -1},
      // ---- cmsg walk: for_each_cmsghdr(), CMSG_OK() ----
      {"cmsg_len_0", S, kNone, 0, [](M m, D) { ctl(m, Ctl().add_len(0, SOL_IP, IP_TTL, nullptr, 0)); }, EINVAL, -1},
      {"cmsg_len_15", S, kNone, 0, [](M m, D) { ctl(m, Ctl().add_len(15, SOL_IP, IP_TTL, nullptr, 0)); }, EINVAL, -1},
      {"cmsg_len_past_controllen", S, kNone, 0,
       [](M m, D) { int t = 64; ctl(m, Ctl().add_len(CMSG_LEN(4) + 8, SOL_IP, IP_TTL, &t, 4)); }, EINVAL, -1},
      {"cmsg_truncated_by_controllen", S, kNone, 0,
       [](M m, D) {
         ctl(m, Ctl().val(SOL_IP, IP_TTL, 64));
         m.msg.msg_controllen = CMSG_LEN(4) - 1;
       },
       EINVAL, -1},
      {"cmsg_trailing_8_junk", S, kNone, 0, [](M m, D) { ctl(m, Ctl().val(SOL_IP, IP_TTL, 64).junk(8, 0xEE)); }, 0, -1},
      {"cmsg_trailing_16_zeroes", S, kNone, 0, [](M m, D) { ctl(m, Ctl().val(SOL_IP, IP_TTL, 64).junk(16, 0)); }, EINVAL, -1},
      {"cmsg_unaligned_control", S, kNone, 0,
       [](M m, D) { m.set_ctl(Ctl().val(SOL_IP, IP_TTL, 64), 1); }, 0, -1},
      {"cmsg_unknown_level_ignored", S, kNone, 0, one(12345, 1, 0), 0, -1},
      {"cmsg_sol_tcp_ignored", S, kNone, 0, one(SOL_TCP, 1, 0), 0, -1},
      // ---- SOL_SOCKET: __sock_cmsg_send() ----
      {"so_mark", S, kNone, 0, one_u32(SOL_SOCKET, SO_MARK, 0x1234), 0, EPERM},
      {"so_mark_bad_len_caps_first", S, kNone, 0,
       [](M m, D) { ctl(m, Ctl().val(SOL_SOCKET, SO_MARK, uint64_t{7})); }, EINVAL, EPERM},
      {"ts_old_tx_software", S, kNone, 0, one_u32(SOL_SOCKET, SO_TIMESTAMPING_OLD, SOF_TIMESTAMPING_TX_SOFTWARE), 0, -1},
      {"ts_old_rx_software", S, kNone, 0, one_u32(SOL_SOCKET, SO_TIMESTAMPING_OLD, SOF_TIMESTAMPING_RX_SOFTWARE), EINVAL, -1},
      {"ts_old_opt_id_flag", S, kNone, 0, one_u32(SOL_SOCKET, SO_TIMESTAMPING_OLD, SOF_TIMESTAMPING_OPT_ID), EINVAL, -1},
      {"ts_new_sched_ack", S, kNone, 0,
       one_u32(SOL_SOCKET, kSoTimestampingNew, SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_TX_ACK), 0, -1},
      {"ts_new_tx_completion", S, kNone, 0, one_u32(SOL_SOCKET, kSoTimestampingNew, 1u << 18), 0, -1},
      {"ts_old_bad_len", S, kNone, 0,
       [](M m, D) { ctl(m, Ctl().val(SOL_SOCKET, SO_TIMESTAMPING_OLD, uint16_t{2})); }, EINVAL, -1},
      {"txtime_without_so_txtime", S, kNone, 0,
       [](M m, D) { ctl(m, Ctl().val(SOL_SOCKET, SCM_TXTIME, uint64_t{1})); }, EINVAL, -1},
      {"txtime_with_so_txtime", S, kTxtime, 0,
       [](M m, D) { ctl(m, Ctl().val(SOL_SOCKET, SCM_TXTIME, uint64_t{1})); }, 0, -1},
      {"txtime_bad_len", S, kTxtime, 0, one_u32(SOL_SOCKET, SCM_TXTIME, 1), EINVAL, -1},
      {"ts_opt_id_without_opt_id", S, kNone, 0, one_u32(SOL_SOCKET, kScmTsOptId, 5), EINVAL, -1},
      {"ts_opt_id_with_opt_id", S, kTsOptId, 0, one_u32(SOL_SOCKET, kScmTsOptId, 5), 0, -1},
      {"ts_opt_id_bad_len", S, kTsOptId, 0,
       [](M m, D) { ctl(m, Ctl().val(SOL_SOCKET, kScmTsOptId, uint64_t{5})); }, EINVAL, -1},
      {"scm_rights_ignored", S, kNone, 0, one(SOL_SOCKET, SCM_RIGHTS, 0), 0, -1},
      {"scm_credentials_ignored", S, kNone, 0, one(SOL_SOCKET, SCM_CREDENTIALS, 0), 0, -1},
      {"so_priority_6", S, kNone, 0, one_u32(SOL_SOCKET, SO_PRIORITY, 6), 0, -1},
      {"so_priority_7", S, kNone, 0, one_u32(SOL_SOCKET, SO_PRIORITY, 7), 0, EPERM},
      {"so_priority_minus_1", S, kNone, 0, one_u32(SOL_SOCKET, SO_PRIORITY, 0xFFFFFFFFu), 0, EPERM},
      {"so_priority_bad_len", S, kNone, 0,
       [](M m, D) { ctl(m, Ctl().val(SOL_SOCKET, SO_PRIORITY, uint8_t{1})); }, EINVAL, -1},
      {"devmem_dmabuf_id", S, kNone, 0, one_u32(SOL_SOCKET, kScmDevmemDmabuf, 3), 0, -1},
      {"sol_socket_unknown_type", S, kNone, 0, one(SOL_SOCKET, SO_RCVBUF, 4096), EINVAL, -1},
      // ---- SOL_IP: ip_cmsg_send() ----
      {"ip_ttl_1", S, kNone, 0, one(SOL_IP, IP_TTL, 1), 0, -1},
      {"ip_ttl_255", S, kNone, 0, one(SOL_IP, IP_TTL, 255), 0, -1},
      {"ip_ttl_0", S, kNone, 0, one(SOL_IP, IP_TTL, 0), EINVAL, -1},
      {"ip_ttl_256", S, kNone, 0, one(SOL_IP, IP_TTL, 256), EINVAL, -1},
      {"ip_ttl_minus_1", S, kNone, 0, one(SOL_IP, IP_TTL, -1), EINVAL, -1},
      {"ip_ttl_as_byte", S, kNone, 0, [](M m, D) { ctl(m, Ctl().val(SOL_IP, IP_TTL, uint8_t{64})); }, EINVAL, -1},
      {"ip_tos_int", S, kNone, 0, one(SOL_IP, IP_TOS, 0x10), 0, -1},
      {"ip_tos_byte", S, kNone, 0, [](M m, D) { ctl(m, Ctl().val(SOL_IP, IP_TOS, uint8_t{0xB8})); }, 0, -1},
      {"ip_tos_int_256", S, kNone, 0, one(SOL_IP, IP_TOS, 256), EINVAL, -1},
      {"ip_tos_int_minus_1", S, kNone, 0, one(SOL_IP, IP_TOS, -1), EINVAL, -1},
      {"ip_tos_u16", S, kNone, 0, [](M m, D) { ctl(m, Ctl().val(SOL_IP, IP_TOS, uint16_t{0x10})); }, EINVAL, -1},
      {"ip_pktinfo_lo", S, kNone, 0,
       [](M m, D d) {
         in_pktinfo p{};
         p.ipi_ifindex = 1;
         p.ipi_spec_dst = d.sin_addr;
         ctl(m, Ctl().val(SOL_IP, IP_PKTINFO, p));
       },
       0, -1},
      {"ip_pktinfo_bad_len", S, kNone, 0, one(SOL_IP, IP_PKTINFO, 1), EINVAL, -1},
      {"ip_protocol_17", S, kNone, 0, one(SOL_IP, kIpProtocol, 17), 0, -1},
      {"ip_protocol_0", S, kNone, 0, one(SOL_IP, kIpProtocol, 0), EINVAL, -1},
      {"ip_protocol_256", S, kNone, 0, one(SOL_IP, kIpProtocol, 256), EINVAL, -1},
      // IP_OPTIONS is a setsockopt name, not a cmsg type: ip_cmsg_send() knows only IP_RETOPTS.
      {"ip_options_type_rejected", S, kNone, 0,
       [](M m, D) { const uint8_t o[] = {1, 1, 1, 1}; ctl(m, Ctl().add(SOL_IP, IP_OPTIONS, o, 4)); }, EINVAL, -1},
      {"ip_recvttl_type_rejected", S, kNone, 0, one(SOL_IP, IP_RECVTTL, 1), EINVAL, -1},
      // IP_RETOPTS: ip_options_get() / __ip_options_compile()
      {"retopts_noops", S, kNone, 0, opts({1, 1, 1, 1}), 0, -1},
      {"retopts_empty", S, kNone, 0, opts({}), 0, -1},
      {"retopts_3_bytes_padded", S, kNone, 0, opts({1, 1, 1}), 0, -1},
      {"retopts_optlen_past_end", S, kNone, 0, opts({7, 12, 4, 0}), EINVAL, -1},
      {"retopts_rr", S, kNone, 0, opts({7, 7, 4, 0, 0, 0, 0, 0}), 0, -1},
      {"retopts_rr_ptr_3", S, kNone, 0, opts({7, 7, 3, 0, 0, 0, 0, 0}), EINVAL, -1},
      {"retopts_two_rr", S, kNone, 0, opts({7, 3, 4, 7, 3, 4, 0, 0}), EINVAL, -1},
      {"retopts_lsrr_needs_net_raw", S, kNone, 0, opts({131, 7, 4, 127, 0, 0, 1, 0}), 0, EPERM},
      {"retopts_ssrr_needs_net_raw", S, kNone, 0, opts({137, 7, 4, 127, 0, 0, 1, 1}), 0, EPERM},
      {"retopts_lsrr_then_truncated_einval_first", S, kNone, 0, opts({131, 7, 4, 127, 0, 0, 1, 7}), EINVAL, EINVAL},
      {"retopts_two_lsrr", S, kNone, 0, opts({131, 7, 4, 127, 0, 0, 1, 1, 131, 7, 4, 127, 0, 0, 1, 1}), EINVAL, EINVAL},
      {"retopts_lsrr_daddr_0", S, kNone, 0,
       [](M m, D) {
         reinterpret_cast<sockaddr_in*>(&m.name)->sin_addr.s_addr = 0;
         const uint8_t o[] = {131, 7, 4, 127, 0, 0, 1, 0};
         ctl(m, Ctl().add(SOL_IP, IP_RETOPTS, o, sizeof(o)));
       },
       EINVAL, EPERM},
      {"retopts_lsrr_ptr_8", S, kNone, 0, opts({131, 7, 8, 127, 0, 0, 1, 0}), EINVAL, -1},
      {"retopts_ts_tsonly", S, kNone, 0, opts({68, 8, 5, 0, 0, 0, 0, 0}), 0, -1},
      {"retopts_ts_flag_2_needs_net_raw", S, kNone, 0, opts({68, 8, 5, 2, 0, 0, 0, 0}), 0, EINVAL},
      {"retopts_sec_needs_net_raw", S, kNone, 0, opts({130, 4, 0, 0}), 0, EINVAL},
      {"retopts_44_bytes_cut_to_40", S, kNone, 0,
       opts({1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
             1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 7, 9, 9, 9}),
       0, -1},
      {"retopts_end_then_garbage", S, kNone, 0, opts({0, 7, 9, 9}), 0, -1},
      // ---- SOL_UDP: udp_cmsg_send() ----
      {"udp_segment_1400", S, kNone, 0, [](M m, D) { ctl(m, Ctl().val(SOL_UDP, UDP_SEGMENT, uint16_t{1400})); }, 0, -1},
      {"udp_segment_0", S, kNone, 0, [](M m, D) { ctl(m, Ctl().val(SOL_UDP, UDP_SEGMENT, uint16_t{0})); }, 0, -1},
      {"udp_segment_ffff", S, kNone, 0, [](M m, D) { ctl(m, Ctl().val(SOL_UDP, UDP_SEGMENT, uint16_t{0xFFFF})); }, 0, -1},
      {"udp_segment_as_int", S, kNone, 0, one(SOL_UDP, UDP_SEGMENT, 1400), EINVAL, -1},
      {"udp_cork_type_rejected", S, kNone, 0, one(SOL_UDP, UDP_CORK, 1), EINVAL, -1},
      // ---- several messages: order, first error wins ----
      {"good_good_then_bad", S, kNone, 0,
       [](M m, D) { ctl(m, Ctl().val(SOL_IP, IP_TTL, 64).val(SOL_IP, IP_TOS, 0x10).val(SOL_IP, IP_TTL, 0)); },
       EINVAL, -1},
      {"tos_byte_then_ttl_aligned", S, kNone, 0,
       [](M m, D) { ctl(m, Ctl().val(SOL_IP, IP_TOS, uint8_t{0x10}).val(SOL_IP, IP_TTL, 9)); }, 0, -1},
      {"ttl_0_then_mark", S, kNone, 0,
       [](M m, D) { ctl(m, Ctl().val(SOL_IP, IP_TTL, 0).val(SOL_SOCKET, SO_MARK, 1u)); }, EINVAL, -1},
      {"mark_then_ttl_0", S, kNone, 0,
       [](M m, D) { ctl(m, Ctl().val(SOL_SOCKET, SO_MARK, 1u).val(SOL_IP, IP_TTL, 0)); }, EINVAL, EPERM},
      {"mark_then_bad_udp_udp_pass_first", S, kNone, 0,
       [](M m, D) { ctl(m, Ctl().val(SOL_SOCKET, SO_MARK, 1u).val(SOL_UDP, UDP_CORK, 1)); }, EINVAL, EINVAL},
      {"priority_7_then_malformed", S, kNone, 0,
       [](M m, D) { ctl(m, Ctl().val(SOL_SOCKET, SO_PRIORITY, 7u).add_len(0, SOL_IP, 0, nullptr, 0)); },
       EINVAL, EINVAL},
      {"udp_ok_then_malformed", S, kNone, 0,
       [](M m, D) { ctl(m, Ctl().val(SOL_UDP, UDP_SEGMENT, uint16_t{1400}).add_len(8, SOL_UDP, 0, nullptr, 0)); },
       EINVAL, -1},
  };
  return v;
}

}  // namespace

const std::vector<Case>& cases() {
  static const std::vector<Case> v = make_cases();
  return v;
}

}  // namespace xmit::test
