// tests/xdp/bed.h — a gtest fixture owning a namespace bed (scripts/netns up <pid>-xdp): the test
// thread enters namespace a; helpers open sockets and read counters inside either namespace.
// The bed is removed in TearDown and, on SIGINT/SIGTERM/SIGABRT or exit(), by a handler.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>

namespace xmit::xdp::testing {

class BedTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Runs `fn` on a helper thread that has joined namespace `ns` (sockets it opens stay there).
  static void run_in_ns(const std::string& ns, const std::function<void()>& fn);
  // A UDP socket bound to addr:port inside `ns` (port 0: ephemeral). -1 on failure (test fails).
  static int udp_socket_in(const std::string& ns, const std::string& addr, uint16_t port);
  // /proc/net/snmp counters of one protocol ("Udp") as seen from inside `ns`.
  static std::map<std::string, long long> snmp_in(const std::string& ns, const std::string& proto = "Udp");
  // `ip -n NS_A link show IF_A` (the XDP attachment shows as "prog/xdp").
  std::string link_show() const;
  bool xdp_attached() const { return link_show().find("prog/xdp") != std::string::npos; }

  // Polls `cond` until true or the deadline; no timing is asserted, the deadline only ends a hang.
  static bool eventually(const std::function<bool()>& cond,
                         std::chrono::milliseconds deadline = std::chrono::seconds(10));

  std::map<std::string, std::string> bed_;  // XMIT_NS_A, XMIT_IF_A, XMIT_MAC_B, ... from scripts/netns up
  std::string ns_a_, ns_b_, if_a_;

 private:
  int orig_netns_ = -1;
};

}  // namespace xmit::xdp::testing
