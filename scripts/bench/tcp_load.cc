// scripts/bench/tcp_load.cc — the load of scripts/bench/tcp_stream and tcp_rr: plain TCP sockets that
// know nothing of xmit. The client opens one connection and says what it wants in a 8-byte hello
// (mode, size); the server (a thread per connection) obliges.
//   tcp_load server PORT                          until SIGTERM; prints "ready" once listening
//   tcp_load client ADDR PORT send SIZE SECONDS   write() SIZE bytes at a time; after SECONDS,
//       shutdown(SHUT_WR) and wait for the server's count of bytes read:
//       -> "fd F bytes N seconds S"   (N: bytes the server read, S: until its count arrived)
//   tcp_load client ADDR PORT send-zc SIZE SECONDS  as send, with SO_ZEROCOPY and send(MSG_ZEROCOPY),
//       the completions read off the error queue as they come (scripts/bench/zerocopy)
//   tcp_load client ADDR PORT send-sf SIZE SECONDS  as send, each SIZE bytes a sendfile() of a
//       SIZE-byte file (in TMPDIR) from offset 0
//       The send modes add "written W cpu_s C": bytes handed to the socket, and the client
//       process's CPU time (user + system, every thread: getrusage(RUSAGE_SELF)) for the run.
//   tcp_load client ADDR PORT recv SIZE SECONDS   the server write()s SIZE bytes at a time; the client
//       reads for SECONDS -> "fd F bytes N seconds S"
//   tcp_load client ADDR PORT rr SIZE SECONDS     SIZE-byte request, SIZE-byte response, one at a time
//       -> "fd F trans N seconds S p50_us A p99_us B"
// TCP_NODELAY on both ends. "fd F" is the client's data socket, for the caller to find it in xmit's log.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

double mono_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

bool read_full(int fd, void* p, size_t n) {
  auto* b = static_cast<uint8_t*>(p);
  while (n > 0) {
    ssize_t r = read(fd, b, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    b += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool write_full(int fd, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  while (n > 0) {
    ssize_t w = write(fd, b, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    b += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

double cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

// MSG_ZEROCOPY completions: every notification waiting on the error queue read (wait: until one).
void zc_drain(int fd, bool wait) {
  for (;;) {
    if (wait) {
      pollfd p{fd, 0, 0};
      ::poll(&p, 1, 1000);
      wait = false;
    }
    char ctl[128];
    msghdr m{};
    m.msg_control = ctl;
    m.msg_controllen = sizeof ctl;
    if (recvmsg(fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) return;
  }
}

// One SIZE-byte send of the mode: write(), send(MSG_ZEROCOPY) or sendfile() from offset 0.
bool send_one(int s, char mode, const uint8_t* buf, uint32_t size, int file) {
  if (mode == 's') return write_full(s, buf, size);
  size_t done = 0;
  while (done < size) {
    ssize_t w;
    if (mode == 'z') {
      w = send(s, buf + done, size - done, MSG_ZEROCOPY);
      if (w < 0 && errno == ENOBUFS) {  // optmem full of completions not read yet
        zc_drain(s, true);
        continue;
      }
    } else {
      off_t off = static_cast<off_t>(done);
      w = sendfile(s, file, &off, size - done);
    }
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    done += static_cast<size_t>(w);
  }
  if (mode == 'z') zc_drain(s, false);
  return true;
}

void nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

struct Hello {
  char mode;  // 's': the client sends, 'r': the client receives, 'e': echo SIZE-byte requests
  char pad[3];
  uint32_t size;
};

void serve(int c) {
  nodelay(c);
  Hello h{};
  if (!read_full(c, &h, sizeof h) || h.size == 0 || h.size > (1u << 20)) {
    close(c);
    return;
  }
  std::vector<uint8_t> buf(std::max<uint32_t>(h.size, 65536), 'y');
  if (h.mode == 's') {
    uint64_t got = 0;
    for (;;) {
      ssize_t r = read(c, buf.data(), buf.size());
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      got += static_cast<uint64_t>(r);
    }
    write_full(c, &got, sizeof got);
  } else if (h.mode == 'r') {
    while (write_full(c, buf.data(), h.size)) {
    }
  } else if (h.mode == 'e') {
    while (read_full(c, buf.data(), h.size) && write_full(c, buf.data(), h.size)) {
    }
  }
  close(c);
}

int server(int port) {
  signal(SIGPIPE, SIG_IGN);
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(ls, 16) != 0) {
    std::perror("tcp_load: bind/listen");
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  for (;;) {
    int c = accept(ls, nullptr, nullptr);
    if (c < 0) {
      if (errno == EINTR) continue;
      std::perror("tcp_load: accept");
      return 1;
    }
    std::thread(serve, c).detach();
  }
}

int client(const char* addr, int port, const char* mode, uint32_t size, double seconds) {
  signal(SIGPIPE, SIG_IGN);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, addr, &to.sin_addr) != 1 || size == 0 || size > (1u << 20)) {
    std::fprintf(stderr, "tcp_load: bad address or size\n");
    return 2;
  }
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0 || connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    std::perror("tcp_load: connect");
    return 1;
  }
  nodelay(s);
  Hello h{};
  const char send_kind = std::strcmp(mode, "send-zc") == 0 ? 'z' : std::strcmp(mode, "send-sf") == 0 ? 'f' : 's';
  if (std::strncmp(mode, "send", 4) == 0) mode = "send";
  h.mode = std::strcmp(mode, "send") == 0 ? 's' : std::strcmp(mode, "recv") == 0 ? 'r' : 'e';
  int file = -1;
  if (send_kind == 'z') {
    int one = 1;
    if (setsockopt(s, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one) != 0) {
      std::perror("tcp_load: SO_ZEROCOPY");
      return 1;
    }
  } else if (send_kind == 'f') {
    const char* dir = std::getenv("TMPDIR");
    std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/tcp_load.XXXXXX";
    file = mkstemp(path.data());
    std::vector<uint8_t> fill(size, 'x');
    if (file < 0 || !write_full(file, fill.data(), size)) {
      std::perror("tcp_load: the sendfile file");
      return 1;
    }
    unlink(path.c_str());
  }
  h.size = size;
  if (!write_full(s, &h, sizeof h)) {
    std::perror("tcp_load: hello");
    return 1;
  }
  std::vector<uint8_t> buf(std::max<uint32_t>(size, 65536), 'x');
  double start = mono_s(), end = start + seconds;
  const double cpu0 = cpu_s();
  if (h.mode == 's') {
    uint64_t put = 0;
    do {
      for (int i = 0; i < 16; ++i) {
        if (!send_one(s, send_kind, buf.data(), size, file)) {
          std::perror("tcp_load: write");
          return 1;
        }
        put += size;
      }
    } while (mono_s() < end);
    // The sender's view at the end of the writes (stderr: the bench scripts read stdout only).
    tcp_info ti{};
    socklen_t tl = sizeof ti;
    if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0) {
      std::fprintf(stderr, "tcp_info: cwnd %u ssthresh %u rtt %u us rttvar %u unacked %u retrans %u total_retrans %u\n",
                   ti.tcpi_snd_cwnd, ti.tcpi_snd_ssthresh, ti.tcpi_rtt, ti.tcpi_rttvar, ti.tcpi_unacked,
                   ti.tcpi_retrans, ti.tcpi_total_retrans);
    }
    shutdown(s, SHUT_WR);
    uint64_t got = 0;
    if (!read_full(s, &got, sizeof got)) {
      std::perror("tcp_load: the server's count");
      return 1;
    }
    double el = mono_s() - start;
    std::printf("fd %d bytes %llu seconds %.6f written %llu cpu_s %.4f\n", s, static_cast<unsigned long long>(got), el,
                static_cast<unsigned long long>(put), cpu_s() - cpu0);
  } else if (h.mode == 'r') {
    uint64_t got = 0;
    double now = start;
    while (now < end) {
      ssize_t r = read(s, buf.data(), buf.size());
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        std::perror("tcp_load: read");
        return 1;
      }
      got += static_cast<uint64_t>(r);
      now = mono_s();
    }
    std::printf("fd %d bytes %llu seconds %.6f\n", s, static_cast<unsigned long long>(got), now - start);
  } else {
    std::vector<double> lat;
    lat.reserve(1 << 20);
    double now = start;
    while (now < end) {
      double t0 = now;
      if (!write_full(s, buf.data(), size) || !read_full(s, buf.data(), size)) {
        std::perror("tcp_load: request/response");
        return 1;
      }
      now = mono_s();
      lat.push_back(now - t0);
    }
    std::sort(lat.begin(), lat.end());
    auto pct = [&](double p) { return lat.empty() ? 0.0 : lat[static_cast<size_t>(p * (lat.size() - 1))] * 1e6; };
    std::printf("fd %d trans %zu seconds %.6f p50_us %.1f p99_us %.1f cpu_s %.4f\n", s, lat.size(), now - start,
                pct(0.50), pct(0.99), cpu_s() - cpu0);
  }
  close(s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "server") == 0) return server(std::atoi(argv[2]));
  if (argc == 7 && std::strcmp(argv[1], "client") == 0 &&
      (std::strcmp(argv[4], "send") == 0 || std::strcmp(argv[4], "recv") == 0 || std::strcmp(argv[4], "rr") == 0 ||
       std::strcmp(argv[4], "send-zc") == 0 || std::strcmp(argv[4], "send-sf") == 0))
    return client(argv[2], std::atoi(argv[3]), argv[4], static_cast<uint32_t>(std::atoi(argv[5])), std::atof(argv[6]));
  std::fprintf(stderr,
               "usage: tcp_load server PORT\n"
               "       tcp_load client ADDR PORT send|send-zc|send-sf|recv|rr SIZE SECONDS\n");
  return 2;
}
