// tests/xdp/bed.cc — the namespace bed fixture; see bed.h. The bed script comes from the
// XMIT_NETNS_SCRIPT environment variable (meson passes scripts/netns of the source tree).
#include "tests/xdp/bed.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "verbs/xdp/xdp_udp_frame.h"

extern char** environ;

namespace xmit::xdp::testing {
namespace {

// Set before the bed exists, read by the async-signal-safe cleanup below.
char g_script[1024];
char g_tag[64];
pid_t g_owner = 0;
volatile sig_atomic_t g_bed_up = 0;
volatile pid_t g_up_pid = 0;  // `scripts/netns up` while it runs

// fork/execve/waitpid only: safe in a signal handler.
void bed_down_now() {
  if (!g_bed_up || getpid() != g_owner) return;
  g_bed_up = 0;
  // A bed still being built would outlive a `down` that ran first: let `up` finish.
  if (pid_t up = g_up_pid; up > 0) waitpid(up, nullptr, 0);
  pid_t p = fork();
  if (p == 0) {
    char down[] = "down";
    char* argv[] = {g_script, down, g_tag, nullptr};
    execve(g_script, argv, environ);
    _exit(127);
  }
  if (p > 0) waitpid(p, nullptr, 0);
}

void on_fatal_signal(int sig) {
  bed_down_now();
  signal(sig, SIG_DFL);
  raise(sig);
}

void install_cleanup_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_owner = getpid();
    atexit(bed_down_now);
    for (int sig : {SIGINT, SIGTERM, SIGABRT}) signal(sig, on_fatal_signal);
  });
}

int enter_ns(const std::string& ns) {
  int fd = open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int r = setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
  close(fd);
  return r;
}

// Runs `scripts/netns up TAG` and returns its stdout; the pid is visible to bed_down_now().
std::string run_up() {
  std::string out;
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return out;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], STDOUT_FILENO);
    char up[] = "up";
    char* argv[] = {g_script, up, g_tag, nullptr};
    execve(g_script, argv, environ);
    _exit(127);
  }
  close(p[1]);
  if (pid < 0) {
    close(p[0]);
    return out;
  }
  g_up_pid = pid;
  char buf[512];
  for (ssize_t n; (n = read(p[0], buf, sizeof buf)) != 0;) {
    if (n > 0) out.append(buf, size_t(n));
    else if (errno != EINTR) break;
  }
  close(p[0]);
  waitpid(pid, nullptr, 0);
  g_up_pid = 0;
  return out;
}

std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "re");
  if (f == nullptr) return out;
  char buf[512];
  while (fgets(buf, sizeof buf, f) != nullptr) out += buf;
  pclose(f);
  return out;
}

}  // namespace

void BedTest::SetUp() {
  const char* script = getenv("XMIT_NETNS_SCRIPT");
  if (script == nullptr) script = XMIT_NETNS_SCRIPT_DEFAULT;  // the source tree's, for runs outside meson
  ASSERT_LT(strlen(script), sizeof g_script);
  ASSERT_EQ(geteuid(), 0u) << "the AF_XDP end-to-end tests need root";
  snprintf(g_script, sizeof g_script, "%s", script);
  snprintf(g_tag, sizeof g_tag, "%d-xdp", int(getpid()));
  install_cleanup_once();

  g_bed_up = 1;  // from here on a crash removes whatever `up` managed to create
  std::string out = run_up();
  for (size_t pos = 0; pos < out.size();) {
    size_t nl = out.find('\n', pos);
    std::string line = out.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? out.size() : nl + 1;
    size_t eq = line.find('=');
    if (eq != std::string::npos) bed_[line.substr(0, eq)] = line.substr(eq + 1);
  }
  ns_a_ = bed_["XMIT_NS_A"];
  ns_b_ = bed_["XMIT_NS_B"];
  if_a_ = bed_["XMIT_IF_A"];
  ASSERT_FALSE(ns_a_.empty() || ns_b_.empty() || if_a_.empty() || bed_["XMIT_MAC_B"].empty())
      << "scripts/netns up printed:\n" << out;

  orig_netns_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(orig_netns_, 0);
  ASSERT_EQ(enter_ns(ns_a_), 0) << "setns into " << ns_a_;
}

void BedTest::TearDown() {
  if (orig_netns_ >= 0) {
    EXPECT_EQ(setns(orig_netns_, CLONE_NEWNET), 0) << strerror(errno);
    close(orig_netns_);
    orig_netns_ = -1;
  }
  bed_down_now();
}

void BedTest::run_in_ns(const std::string& ns, const std::function<void()>& fn) {
  int err = 0;
  std::thread t([&] {
    err = enter_ns(ns);
    if (err == 0) fn();
  });
  t.join();
  ASSERT_EQ(err, 0) << "setns into " << ns << ": " << strerror(-err);
}

int BedTest::udp_socket_in(const std::string& ns, const std::string& addr, uint16_t port) {
  int fd = -1;
  run_in_ns(ns, [&] {
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    inet_pton(AF_INET, addr.c_str(), &sin.sin_addr);
    if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) < 0) {
      ADD_FAILURE() << "bind " << addr << ":" << port << " in " << ns << ": " << strerror(errno);
      close(fd);
      fd = -1;
    }
  });
  EXPECT_GE(fd, 0);
  return fd;
}

std::map<std::string, long long> BedTest::snmp_in(const std::string& ns, const std::string& proto) {
  std::map<std::string, long long> out;
  run_in_ns(ns, [&] { out = read_snmp(proto, "/proc/thread-self/net/snmp"); });
  EXPECT_FALSE(out.empty()) << "no " << proto << " counters in " << ns;
  return out;
}

std::string BedTest::link_show() const {
  return run_capture("ip -n " + ns_a_ + " link show " + if_a_ + " 2>&1");
}

bool BedTest::eventually(const std::function<bool()>& cond, std::chrono::milliseconds deadline) {
  auto end = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace xmit::xdp::testing
