// stack/dev/null_netdev.cc — the null device (see null_netdev.h).
#include "stack/dev/null_netdev.h"

#include "stack/dev/sw_offload.h"

namespace xmit {

NullNetdev::NullNetdev(const NullNetdevConfig& cfg)
    : cfg_(cfg), cookies_(cfg.tx_depth), flows_(cfg.flow_table_size) {}

int NullNetdev::xmit(absl::Span<const TxFrame> frames) {
  int taken = 0;
  for (const TxFrame& f : frames) {
    if (prod_ - cons_ == cookies_.size()) {
      ++stats_.tx_full;
      break;
    }
    if (int err = tx_frame_check(f, cfg_.features); err < 0) {
      ++stats_.tx_errors;
      return taken != 0 ? taken : err;
    }
    cookies_[prod_++ % cookies_.size()] = f.cookie;
    ++stats_.tx_frames;
    stats_.tx_bytes += tx_frame_len(f);
    stats_.tx_segs += f.segs.size();
    ++taken;
  }
  return taken;
}

int NullNetdev::poll_tx(absl::FunctionRef<void(uint64_t cookie)> done) {
  int n = 0;
  for (; cons_ != prod_; ++cons_, ++n) done(cookies_[cons_ % cookies_.size()]);
  return n;
}

int NullNetdev::poll_rx(int /*budget*/, absl::FunctionRef<bool(const RxFrame&)> /*deliver*/) {
  return 0;  // nothing ever arrives
}

void NullNetdev::rx_recycle(uint64_t /*buf_id*/) {}

}  // namespace xmit
