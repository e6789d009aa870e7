// tests/dev/forwarding_netdev.h — a device in front of another that hands every call on unchanged;
// a test's tap derives from it and overrides only what it watches or changes (what xmit() is given,
// the doorbells, whether completions wake).
#pragma once

#include "stack/dev/netdev.h"

namespace xmit {

class ForwardingNetdev : public Netdev {
 public:
  explicit ForwardingNetdev(Netdev* inner) : in_(inner) {}
  const NetdevFeatures& features() const override { return in_->features(); }
  const uint8_t* mac() const override { return in_->mac(); }
  int ifindex() const override { return in_->ifindex(); }
  int xmit(absl::Span<const TxFrame> frames) override { return in_->xmit(frames); }
  int poll_tx(absl::FunctionRef<void(uint64_t cookie)> done) override { return in_->poll_tx(done); }
  int poll_rx(int budget, absl::FunctionRef<bool(const RxFrame&)> deliver) override {
    return in_->poll_rx(budget, deliver);
  }
  void rx_recycle(uint64_t buf_id) override { in_->rx_recycle(buf_id); }
  int steer(const FlowKey& key) override { return in_->steer(key); }
  int unsteer(const FlowKey& key) override { return in_->unsteer(key); }
  int wait_fd() const override { return in_->wait_fd(); }
  bool tx_completion_wakes() const override { return in_->tx_completion_wakes(); }
  void flush_tx() override { in_->flush_tx(); }
  void set_xmit_more(bool on) override { in_->set_xmit_more(on); }
  bool xmit_more() const override { return in_->xmit_more(); }

 protected:
  Netdev* in_;
};

}  // namespace xmit
