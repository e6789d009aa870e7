// scripts/bench/udp_send_load.cc — the load for scripts/bench/udp_send: a plain program that knows
// nothing of xmit. `send` calls sendto() in a loop from one thread for a fixed time; `sink` reads
// with recvmmsg() until SIGINT/SIGTERM. Both print one line of counts on stdout.
//   udp_send_load send ADDR PORT SIZE SECONDS  ->  "sent N failed N seconds S first_errno E"
//   udp_send_load sink PORT                    ->  "received N" (after SIGTERM)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

double mono_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

int send_loop(const char* addr, int port, int size, double seconds) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, addr, &to.sin_addr) != 1) {
    std::fprintf(stderr, "udp_send_load: bad address %s\n", addr);
    return 2;
  }
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0) {
    std::perror("udp_send_load: socket");
    return 1;
  }
  std::vector<char> buf(static_cast<size_t>(size), 'x');
  unsigned long long sent = 0, failed = 0;
  int first_errno = 0;
  double start = mono_s(), end = start + seconds, now = start;
  for (;;) {
    // The clock (vDSO, no syscall) is read once every 64 datagrams.
    for (int i = 0; i < 64; ++i) {
      ssize_t r = sendto(s, buf.data(), buf.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
      if (r == static_cast<ssize_t>(buf.size())) {
        ++sent;
      } else {
        if (first_errno == 0) first_errno = errno;
        ++failed;
      }
    }
    now = mono_s();
    if (now >= end) break;
  }
  std::printf("sent %llu failed %llu seconds %.6f first_errno %d\n", sent, failed, now - start, first_errno);
  close(s);
  return 0;
}

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

int sink_loop(int port) {
  struct sigaction sa{};
  sa.sa_handler = on_signal;  // no SA_RESTART: recvmmsg() returns EINTR
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  int rcvbuf = 4 << 20;
  setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);  // capped by net.core.rmem_max
  sockaddr_in me{};
  me.sin_family = AF_INET;
  me.sin_port = htons(static_cast<uint16_t>(port));
  if (s < 0 || bind(s, reinterpret_cast<const sockaddr*>(&me), sizeof me) != 0) {
    std::perror("udp_send_load: sink socket/bind");
    return 1;
  }
  constexpr int kVlen = 64;
  static char bufs[kVlen][2048];
  iovec iov[kVlen];
  mmsghdr msgs[kVlen];
  for (int i = 0; i < kVlen; ++i) {
    iov[i] = {bufs[i], sizeof bufs[i]};
    msgs[i] = {};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  unsigned long long received = 0;
  while (!g_stop) {
    int n = recvmmsg(s, msgs, kVlen, 0, nullptr);
    if (n > 0) received += static_cast<unsigned long long>(n);
  }
  std::printf("received %llu\n", received);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 6 && std::strcmp(argv[1], "send") == 0) {
    return send_loop(argv[2], std::atoi(argv[3]), std::atoi(argv[4]), std::atof(argv[5]));
  }
  if (argc == 3 && std::strcmp(argv[1], "sink") == 0) return sink_loop(std::atoi(argv[2]));
  std::fprintf(stderr, "usage: %s send ADDR PORT SIZE SECONDS | sink PORT\n", argv[0]);
  return 2;
}
