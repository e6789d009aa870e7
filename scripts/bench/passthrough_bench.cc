// scripts/bench/passthrough_bench.cc — cost of calls on fds xmit does not offload. Run once plain
// and once under LD_PRELOAD=libxmit.so (scripts/bench/passthrough does both and prints the ratio).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

// send() of 64 B on a socketpair; the peer is drained (outside the timing) when the buffer fills.
void BM_send_socketpair(benchmark::State& state) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
    state.SkipWithError("socketpair");
    return;
  }
  char buf[64] = {};
  char sink[65536];
  for (auto _ : state) {
    if (send(sv[0], buf, sizeof buf, MSG_DONTWAIT) < 0) {
      state.PauseTiming();
      while (recv(sv[1], sink, sizeof sink, MSG_DONTWAIT) > 0) {
      }
      state.ResumeTiming();
    }
  }
  close(sv[0]);
  close(sv[1]);
}
BENCHMARK(BM_send_socketpair);

// fcntl(F_GETFL): the cheapest interposed syscall, where the lookup's share is largest.
void BM_fcntl_getfl(benchmark::State& state) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
    state.SkipWithError("socketpair");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(fcntl(sv[0], F_GETFL));
  close(sv[0]);
  close(sv[1]);
}
BENCHMARK(BM_fcntl_getfl);

}  // namespace

BENCHMARK_MAIN();
