// tests/stack/skb_bench.cc — cost of the skb fast path (alloc, reserve, put, frag, clone, free)
// and of csum_partial, with allocations per iteration reported from a counting operator new.
#include <memory>
#include <vector>

#include "benchmark/benchmark.h"
#include "stack/base/checksum.h"
#include "stack/skb/pool.h"
#include "stack/skb/sk_buff.h"
#include "tests/stack/count_new.h"

namespace xmit {
namespace {

void BM_SkbCycle(benchmark::State& state) {
  std::unique_ptr<BufPool> bufs;
  std::unique_ptr<SkbPool> skbs;
  if (BufPool::create(1024, 2048, &bufs) != 0 || SkbPool::create(256, bufs.get(), &skbs) != 0) {
    state.SkipWithError("pool");
    return;
  }
  size_t before = testing_support::operator_new_calls();
  for (auto _ : state) {
    sk_buff* skb = skbs->alloc_skb();
    skb_reserve(skb, 128);
    benchmark::DoNotOptimize(skb_put(skb, 64));
    uint8_t* b = bufs->alloc();
    skb_append_frag(skb, skb_frag_pool(bufs.get(), b, 1448));
    sk_buff* clone = skb_clone(skb);
    benchmark::DoNotOptimize(skb_push(clone, 54));
    kfree_skb(clone);
    kfree_skb(skb);
  }
  double news = static_cast<double>(testing_support::operator_new_calls() - before);
  state.counters["news_per_iter"] = news / static_cast<double>(state.iterations());
}
BENCHMARK(BM_SkbCycle);

void BM_CsumPartial(benchmark::State& state) {
  std::vector<uint8_t> buf(static_cast<size_t>(state.range(0)) + 1, 0x5a);
  for (auto _ : state) {
    benchmark::DoNotOptimize(csum_partial(buf.data() + 1, buf.size() - 1, 0));  // unaligned
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_CsumPartial)->Arg(64)->Arg(1500)->Arg(9000);

}  // namespace
}  // namespace xmit

BENCHMARK_MAIN();
