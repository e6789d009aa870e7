// tests/sock/cmsg_test.cc — what the parsers produce on success: Ipcm fields, the Kmsg byte count
// and clamps, IP option bookkeeping. (The errnos are covered by sendmsg_diff_test against Linux.)
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>

#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "stack/sock/cmsg.h"
#include "stack/sock/ip_options.h"
#include "stack/sock/msghdr.h"
#include "stack/sock/udp_sendmsg_checks.h"

namespace xmit {
namespace {

struct Control {
  alignas(8) uint8_t b[512] = {};
  size_t len = 0;
  template <typename T>
  Control& add(int level, int type, T v) {
    cmsghdr h{};
    h.cmsg_len = CMSG_LEN(sizeof(T));
    h.cmsg_level = level;
    h.cmsg_type = type;
    std::memcpy(b + len, &h, sizeof(h));
    std::memcpy(b + len + CMSG_LEN(0), &v, sizeof(T));
    len += CMSG_SPACE(sizeof(T));
    return *this;
  }
  Kmsg kmsg() const {
    Kmsg k;
    k.msg_control = b;
    k.msg_controllen = len;
    return k;
  }
};

TEST(IpCmsgSend, FillsIpcm) {
  in_pktinfo pi{};
  pi.ipi_ifindex = 7;
  pi.ipi_spec_dst.s_addr = htonl(0x7f000002);
  Control c;
  c.add(SOL_IP, IP_TTL, 9).add(SOL_IP, IP_TOS, uint8_t{0x10}).add(SOL_IP, IP_PKTINFO, pi)
      .add(SOL_SOCKET, SO_MARK, 0x55u).add(SOL_IP, 52 /* IP_PROTOCOL */, 17);
  CmsgCtx ctx;
  ctx.cap_net_admin = true;
  Ipcm ipc;
  ASSERT_EQ(ip_cmsg_send(c.kmsg(), ctx, &ipc), 0);
  EXPECT_EQ(ipc.ttl, 9);
  EXPECT_EQ(ipc.tos, 0x10);
  EXPECT_EQ(ipc.sockc.priority, 6u);  // IPTOS_LOWDELAY → TC_PRIO_INTERACTIVE
  EXPECT_EQ(ipc.oif, 7);
  EXPECT_EQ(ipc.addr, htonl(0x7f000002));
  EXPECT_EQ(ipc.sockc.mark, 0x55u);
  EXPECT_EQ(ipc.protocol, 17);
  EXPECT_FALSE(ipc.has_opt);
}

TEST(IpCmsgSend, PktinfoIfindexZeroKeepsOif) {
  in_pktinfo pi{};
  Control c;
  c.add(SOL_IP, IP_PKTINFO, pi);
  Ipcm ipc;
  ipc.oif = 3;  // sk_bound_dev_if
  ASSERT_EQ(ip_cmsg_send(c.kmsg(), CmsgCtx{}, &ipc), 0);
  EXPECT_EQ(ipc.oif, 3);
}

TEST(SockCmsgSend, TimestampingReplacesTxRecordBitsAndTxtime) {
  Control c;
  c.add(SOL_SOCKET, SO_TIMESTAMPING_OLD, kSofTimestampingTxSched).add(SOL_SOCKET, SCM_TXTIME, uint64_t{123456789});
  CmsgCtx ctx;
  ctx.sock_txtime = true;
  Sockcm sc;
  sc.tsflags = kSofTimestampingTxSoftware | kSofTimestampingOptId;  // from sk_tsflags
  ASSERT_EQ(sock_cmsg_send(c.kmsg(), ctx, &sc), 0);
  EXPECT_EQ(sc.tsflags, kSofTimestampingTxSched | kSofTimestampingOptId);
  EXPECT_EQ(sc.transmit_time, 123456789u);
}

TEST(SockCmsgSend, OtherLevelsSkipped) {
  Control c;
  c.add(SOL_IP, IP_TTL, 0);  // invalid for ip_cmsg_send, but sock_cmsg_send only reads SOL_SOCKET
  Sockcm sc;
  EXPECT_EQ(sock_cmsg_send(c.kmsg(), CmsgCtx{}, &sc), 0);
}

TEST(UdpCmsgSend, GsoSizeAndNeedIp) {
  Control only_udp;
  only_udp.add(SOL_UDP, UDP_SEGMENT, uint16_t{1200});
  uint16_t gso = 0;
  EXPECT_EQ(udp_cmsg_send(only_udp.kmsg(), &gso), 0);
  EXPECT_EQ(gso, 1200);
  Control mixed;
  mixed.add(SOL_IP, IP_TTL, 0).add(SOL_UDP, UDP_SEGMENT, uint16_t{900});
  EXPECT_EQ(udp_cmsg_send(mixed.kmsg(), &gso), 1);
  EXPECT_EQ(gso, 900);
}

TEST(IpOptions, LsrrTakesFirstHop) {
  const uint8_t o[] = {131, 11, 4, 10, 0, 0, 1, 10, 0, 0, 2};
  IpOptions opt;
  ASSERT_EQ(ip_options_get(o, sizeof(o), true, &opt), 0);
  EXPECT_EQ(opt.optlen, 12);
  EXPECT_EQ(opt.faddr, htonl(0x0a000001));
  EXPECT_EQ(opt.srr, 20);
  EXPECT_FALSE(opt.is_strictroute);
  EXPECT_EQ(opt.data[3], 10);  // the second hop moved up
  EXPECT_EQ(opt.data[6], 2);
  EXPECT_EQ(opt.data[11], 0);  // IPOPT_END padding
}

TEST(IpOptions, RecordRouteAdvancesPointer) {
  const uint8_t o[] = {1, 7, 7, 4, 0, 0, 0, 0};
  IpOptions opt;
  ASSERT_EQ(ip_options_get(o, sizeof(o), false, &opt), 0);
  EXPECT_EQ(opt.rr, 21);
  EXPECT_TRUE(opt.rr_needaddr);
  EXPECT_EQ(opt.data[3], 8);
}

TEST(IpOptions, CapabilityGatedTypes) {
  const uint8_t sec[] = {130, 4, 0, 0};
  IpOptions opt;
  EXPECT_EQ(ip_options_get(sec, sizeof(sec), false, &opt), -EINVAL);
  EXPECT_EQ(ip_options_get(sec, sizeof(sec), true, &opt), 0);
  const uint8_t cipso[] = {134, 8, 0, 0, 0, 1, 0, 0};
  EXPECT_EQ(ip_options_get(cipso, sizeof(cipso), true, &opt), -EINVAL);
  const uint8_t lsrr[] = {131, 7, 4, 10, 0, 0, 1};
  EXPECT_EQ(ip_options_get(lsrr, sizeof(lsrr), false, &opt), -EPERM);
}

TEST(Msghdr, CountClampsToMaxRwCount) {
  static uint8_t buf[16];
  iovec iov[3] = {{buf, 0x7fffffff}, {buf, 0x7fffffff}, {buf, 5}};
  msghdr m{};
  m.msg_iov = iov;
  m.msg_iovlen = 3;
  Kmsg k;
  ASSERT_EQ(sys_sendmsg_prepare(&m, 0, &k, SendArgsCtx{}), 0);
  EXPECT_EQ(k.count, kMaxRwCount);
  EXPECT_EQ(k.nr_segs, 3u);
  EXPECT_FALSE(k.iter_ubuf);
  EXPECT_FALSE(k.has_name);
}

TEST(Msghdr, OneSegmentIsUbufAndNameIsCopied) {
  static uint8_t buf[16];
  iovec iov{buf, 10};
  sockaddr_storage ss{};
  ss.ss_family = AF_INET;
  msghdr m{};
  m.msg_name = &ss;
  m.msg_namelen = 300;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_flags = MSG_EOR;
  Kmsg k;
  ASSERT_EQ(sys_sendmsg_prepare(&m, MSG_DONTWAIT | 0x8000000, &k, SendArgsCtx{}), 0);
  EXPECT_TRUE(k.iter_ubuf);
  EXPECT_EQ(k.count, 10u);
  EXPECT_EQ(k.segs()[0].iov_base, buf);
  EXPECT_EQ(k.msg_namelen, 128);
  EXPECT_EQ(k.name()->sa_family, AF_INET);
  EXPECT_EQ(k.msg_flags, unsigned{MSG_DONTWAIT});  // MSG_SPLICE_PAGES cleared, msg_flags ignored
}

TEST(Msghdr, SendmmsgAdmitsMsgEorFromMsgFlags) {
  msghdr m{};
  m.msg_flags = MSG_EOR | MSG_OOB;
  Kmsg k;
  ASSERT_EQ(copy_msghdr(&m, &k, SendArgsCtx{}), 0);
  ASSERT_EQ(sys_sendmsg_control(&k, 0, kMsgEor, SendArgsCtx{}), 0);
  EXPECT_EQ(k.msg_flags, kMsgEor);
  unsigned f = 0;
  EXPECT_EQ(sys_sendmmsg_flags(0, 0, 2, &f), 0);
  EXPECT_EQ(f, kMsgBatch);
  EXPECT_EQ(sys_sendmmsg_flags(0, 1, 2, &f), 0);
  EXPECT_EQ(f, 0u);
  EXPECT_EQ(sys_sendmmsg_flags(kMsgCmsgCompat, 0, 1, &f), -EINVAL);
}

TEST(UdpSendmsgArgs, CorkedDatagramSkipsAddressAndCmsg) {
  Control c;
  c.add(SOL_IP, IP_TTL, 0);
  Kmsg k = c.kmsg();
  UdpSendCtx u;
  u.pending = AF_INET;
  Ipcm ipc;
  uint32_t daddr = 0;
  uint16_t dport = 0;
  EXPECT_EQ(udp_sendmsg_args(k, u, &ipc, &daddr, &dport), kUdpAppendPending);
  u.pending = AF_INET6;
  EXPECT_EQ(udp_sendmsg_args(k, u, &ipc, &daddr, &dport), -EINVAL);
}

}  // namespace
}  // namespace xmit
