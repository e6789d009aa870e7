// tests/neigh/netlink_parse_test.cc — the rtnetlink reply parsers of NetlinkFib: well-formed
// messages as rt_fill_info()/neigh_fill_info() build them, then every truncation and corrupted
// attribute lengths (run under ASan to catch any out-of-bounds read).
#include <linux/in_route.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "stack/neigh/netlink_fib.h"

namespace xmit {
namespace {

// Builds one netlink message into a vector (4-byte aligned).
class MsgBuilder {
 public:
  template <class Fixed>
  MsgBuilder(uint16_t type, const Fixed& fixed) : buf_(NLMSG_LENGTH(sizeof(Fixed)) / 4 + 1, 0) {
    hdr()->nlmsg_len = NLMSG_LENGTH(sizeof(Fixed));
    hdr()->nlmsg_type = type;
    std::memcpy(NLMSG_DATA(hdr()), &fixed, sizeof fixed);
  }
  void put(uint16_t type, const void* data, size_t len) {
    size_t off = NLMSG_ALIGN(hdr()->nlmsg_len);
    size_t total = off + RTA_ALIGN(RTA_LENGTH(len));
    buf_.resize(total / 4 + 1, 0);
    auto* rta = reinterpret_cast<rtattr*>(bytes() + off);
    rta->rta_type = type;
    rta->rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
    std::memcpy(RTA_DATA(rta), data, len);
    hdr()->nlmsg_len = static_cast<uint32_t>(total);
  }
  void put32(uint16_t type, uint32_t v) { put(type, &v, 4); }
  nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
  uint8_t* bytes() { return reinterpret_cast<uint8_t*>(buf_.data()); }
  uint32_t len() { return hdr()->nlmsg_len; }

 private:
  std::vector<uint32_t> buf_;
};

MsgBuilder route_reply() {
  rtmsg r{};
  r.rtm_family = AF_INET;
  r.rtm_type = RTN_UNICAST;
  r.rtm_flags = RTM_F_CLONED | RTCF_LOCAL;
  MsgBuilder m(RTM_NEWROUTE, r);
  m.put32(RTA_DST, make_ipv4_addr(198, 19, 0, 9));
  m.put32(RTA_OIF, 5);
  m.put32(RTA_PREFSRC, make_ipv4_addr(198, 18, 0, 1));
  m.put32(RTA_GATEWAY, make_ipv4_addr(198, 18, 0, 2));
  // RTA_METRICS { RTAX_MTU 1400 }
  uint32_t nest[2];
  rtattr inner{.rta_len = RTA_LENGTH(4), .rta_type = RTAX_MTU};
  std::memcpy(&nest[0], &inner, sizeof inner);
  nest[1] = 1400;
  m.put(RTA_METRICS, nest, sizeof nest);
  return m;
}

TEST(ParseRouteReply, ReadsWhatRtFillInfoWrites) {
  MsgBuilder m = route_reply();
  Rtable rt;
  ASSERT_EQ(parse_route_reply(m.hdr(), &rt), 0);
  EXPECT_EQ(rt, (Rtable{.type = RTN_UNICAST, .oif = 5, .gateway = make_ipv4_addr(198, 18, 0, 2),
                        .prefsrc = make_ipv4_addr(198, 18, 0, 1), .mtu = 1400, .flags = RTCF_LOCAL}));
}

TEST(ParseRouteReply, RejectsOtherFamiliesAndIpv6NextHops) {
  rtmsg r{};
  r.rtm_family = AF_INET6;
  MsgBuilder v6(RTM_NEWROUTE, r);
  Rtable rt;
  EXPECT_EQ(parse_route_reply(v6.hdr(), &rt), -EAFNOSUPPORT);
  MsgBuilder via = route_reply();
  uint8_t v[18] = {AF_INET6 & 0xff, 0};
  via.put(RTA_VIA, v, sizeof v);
  EXPECT_EQ(parse_route_reply(via.hdr(), &rt), -EAFNOSUPPORT);
}

TEST(ParseRouteReply, SurvivesEveryTruncationAndBadAttributeLengths) {
  MsgBuilder m = route_reply();
  uint32_t full = m.len();
  for (uint32_t len = sizeof(nlmsghdr); len <= full; ++len) {  // NLMSG_OK() never hands over less
    std::unique_ptr<uint8_t[]> copy(new uint8_t[len]);  // exactly len bytes: ASan sees a read past them
    std::memcpy(copy.get(), m.bytes(), len);
    auto* h = reinterpret_cast<nlmsghdr*>(copy.get());
    h->nlmsg_len = len;
    Rtable rt;
    int err = parse_route_reply(h, &rt);
    if (len < NLMSG_LENGTH(sizeof(rtmsg))) {
      EXPECT_EQ(err, -EINVAL) << len;
    }
  }
  // Attribute lengths that lie: larger than the message, smaller than a header, odd payloads.
  for (uint16_t bad : {0, 1, 3, 4, 5, 7, 200, 0xffff}) {
    MsgBuilder c = route_reply();
    auto* first = reinterpret_cast<rtattr*>(c.bytes() + NLMSG_LENGTH(sizeof(rtmsg)));
    first->rta_len = bad;
    Rtable rt;
    (void)parse_route_reply(c.hdr(), &rt);
    MsgBuilder d = route_reply();
    // the RTA_METRICS nest's inner attribute
    uint8_t* p = d.bytes() + d.len() - 8;
    std::memcpy(p, &bad, 2);
    (void)parse_route_reply(d.hdr(), &rt);
  }
  MsgBuilder short_oif = route_reply();
  uint16_t two = 2;
  short_oif.put(RTA_OIF, &two, 2);
  Rtable rt;
  EXPECT_EQ(parse_route_reply(short_oif.hdr(), &rt), -EINVAL);
}

MsgBuilder neigh_msg(uint16_t type = RTM_NEWNEIGH) {
  ndmsg n{};
  n.ndm_family = AF_INET;
  n.ndm_ifindex = 9;
  n.ndm_state = NUD_REACHABLE;
  MsgBuilder m(type, n);
  m.put32(NDA_DST, make_ipv4_addr(198, 18, 0, 2));
  uint8_t mac[6] = {2, 1, 2, 3, 4, 5};
  m.put(NDA_LLADDR, mac, 6);
  return m;
}

TEST(ParseNeighMsg, ReadsWhatNeighFillInfoWrites) {
  MsgBuilder m = neigh_msg();
  int ifindex = 0;
  be32 ip = 0;
  NeighInfo info;
  ASSERT_EQ(parse_neigh_msg(m.hdr(), &ifindex, &ip, &info), 0);
  EXPECT_EQ(ifindex, 9);
  EXPECT_EQ(ip, make_ipv4_addr(198, 18, 0, 2));
  EXPECT_EQ(info, (NeighInfo{.ha = {2, 1, 2, 3, 4, 5}, .nud_state = NUD_REACHABLE, .has_ha = true}));
  MsgBuilder del = neigh_msg(RTM_DELNEIGH);
  EXPECT_EQ(parse_neigh_msg(del.hdr(), &ifindex, &ip, &info), 0);
}

TEST(ParseNeighMsg, RejectsMissingDestinationAndSurvivesTruncation) {
  ndmsg n{};
  n.ndm_family = AF_INET;
  MsgBuilder nodst(RTM_NEWNEIGH, n);
  int ifindex = 0;
  be32 ip = 0;
  NeighInfo info;
  EXPECT_EQ(parse_neigh_msg(nodst.hdr(), &ifindex, &ip, &info), -EINVAL);
  MsgBuilder route = route_reply();
  EXPECT_EQ(parse_neigh_msg(route.hdr(), &ifindex, &ip, &info), -EINVAL);

  MsgBuilder m = neigh_msg();
  for (uint32_t len = sizeof(nlmsghdr); len <= m.len(); ++len) {
    std::unique_ptr<uint8_t[]> copy(new uint8_t[len]);  // exactly len bytes: ASan sees a read past them
    std::memcpy(copy.get(), m.bytes(), len);
    auto* h = reinterpret_cast<nlmsghdr*>(copy.get());
    h->nlmsg_len = len;
    int err = parse_neigh_msg(h, &ifindex, &ip, &info);
    if (len < NLMSG_LENGTH(sizeof(ndmsg)) + RTA_LENGTH(4)) {
      EXPECT_EQ(err, -EINVAL) << len;
    }
  }
}

}  // namespace
}  // namespace xmit
