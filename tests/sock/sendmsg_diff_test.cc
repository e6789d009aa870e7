// tests/sock/sendmsg_diff_test.cc — differential tests: every case of the table (and every MSG_*
// bit) through the kernel's sendmsg()/sendto() on a UDP socket and through stack/sock; the errnos
// must match each other and the table. Run once with this process's capabilities and once in a
// forked child without CAP_NET_RAW/CAP_NET_ADMIN.
#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ostream>
#include <string>

#include "gtest/gtest.h"
#include "tests/sock/diff_harness.h"

namespace xmit::test {

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

namespace {

class SendmsgDiff : public ::testing::TestWithParam<Case> {};

TEST_P(SendmsgDiff, KernelAndXmitAgree) {
  const Case& c = GetParam();
  DiffHarness h;
  Caps caps = current_caps();
  bool have = caps.net_raw || caps.net_admin;
  Outcome o = h.run(c, caps);
  EXPECT_EQ(check(c, o, have), "");
}

INSTANTIATE_TEST_SUITE_P(Table, SendmsgDiff, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

// The whole table again in a child that dropped CAP_NET_RAW and CAP_NET_ADMIN (capset on its own
// sets only; nothing else about the machine changes).
TEST(SendmsgDiffNoCaps, WholeTableWithoutNetCaps) {
  Caps caps = current_caps();
  if (!caps.net_raw && !caps.net_admin) GTEST_SKIP() << "already without CAP_NET_RAW/CAP_NET_ADMIN: the table test covers it";
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(p[0]);
    std::string out;
    if (!drop_net_caps()) {
      out = "capset failed\n";
    } else {
      DiffHarness h;
      for (const Case& c : cases()) {
        std::string line = check(c, h.run(c, Caps{}), false);
        if (!line.empty()) out += line + "\n";
      }
    }
    ssize_t w = write(p[1], out.data(), out.size());
    (void)w;
    _exit(out.empty() ? 0 : 1);
  }
  close(p[1]);
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof(buf))) > 0) got.append(buf, static_cast<size_t>(n));
  close(p[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EQ(got, "");
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

// Every single MSG_* bit, through sendmsg and sendto: udp_sendmsg() rejects only MSG_OOB
// (-EOPNOTSUPP); sendmsg() alone rejects MSG_CMSG_COMPAT (-EINVAL); the rest pass.
TEST(SendmsgDiffFlags, EveryBitAlone) {
  DiffHarness h;
  Caps caps = current_caps();
  for (int bit = 0; bit < 32; ++bit) {
    for (Api api : {Api::kSendmsg, Api::kSendto}) {
      unsigned f = 1u << bit;
      int want = 0;
      if (f == MSG_OOB) want = EOPNOTSUPP;
      if (f == 0x80000000u && api == Api::kSendmsg) want = EINVAL;
      std::string name = std::string(api == Api::kSendmsg ? "sendmsg" : "sendto") + "_bit_" + std::to_string(bit);
      Case c{name.c_str(), api, kNone, f, [](Msg&, const sockaddr_in&) {}, want, -1};
      EXPECT_EQ(check(c, h.run(c, caps), true), "");
    }
  }
}

}  // namespace
}  // namespace xmit::test
