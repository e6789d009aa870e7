// stack/dev/pcap.h — a classic libpcap file writer and a Netdev decorator that records every frame
// sent and received through it (what XMIT_PCAP=path turns on). Counterpart: tcpdump -w on the device.
#pragma once

#include <cstdint>
#include <memory>

#include "absl/types/span.h"
#include "stack/dev/netdev.h"

namespace xmit {

enum class PcapTsUnit { kMicro, kNano };  // magic 0xa1b2c3d4 or 0xa1b23c4d

struct PcapOptions {
  PcapTsUnit ts_unit = PcapTsUnit::kNano;
  uint32_t snaplen = 262144;      // longer frames are cut to this; 0 means the default
  uint32_t buffer_size = 1 << 16;  // bytes gathered before a write(2)
};

// Writes pcap 2.4, LINKTYPE_ETHERNET, in host byte order (readers detect it from the magic).
// Records are buffered; flush() or close() writes them out. The first failure is sticky: every
// later call returns the same -errno and writes nothing, so a full disk cannot crash the host
// program. Uses raw syscalls, so it does not re-enter an interposed write(2).
// Not thread-safe.
class PcapWriter {
 public:
  PcapWriter() = default;
  ~PcapWriter();  // close(), errors dropped
  PcapWriter(const PcapWriter&) = delete;
  PcapWriter& operator=(const PcapWriter&) = delete;

  // Creates or truncates `path` (mode 0644) and writes the file header. 0 or -errno
  // (-EBUSY if already open).
  int open(const char* path, const PcapOptions& opts = {});
  // Writes to an fd the caller keeps and closes; 0 or -errno.
  int attach(int fd, const PcapOptions& opts = {});

  // Appends one record; `ts_ns` is the capture time in ns (passed in, never read here).
  int write(uint64_t ts_ns, absl::Span<const FrameSeg> segs);
  int write(uint64_t ts_ns, const uint8_t* data, uint32_t len);
  int flush();
  int close();  // flush, close an fd opened by open(); 0 or the first -errno seen

  bool is_open() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  int error() const { return error_; }
  uint64_t packets() const { return packets_; }

 private:
  int start(int fd, bool owned, const PcapOptions& opts);
  int append(const uint8_t* p, uint32_t len);

  int fd_ = -1;
  bool owned_ = false;
  int error_ = 0;
  PcapOptions opts_;
  std::unique_ptr<uint8_t[]> buf_;
  uint32_t used_ = 0;
  uint64_t packets_ = 0;
};

// Records every frame `lower` takes in xmit() and every frame it delivers in poll_rx(), then
// forwards. TX frames are recorded as posted: offloaded checksums unfinished and TSO frames
// unsegmented, as tcpdump shows them on a Linux host. Write errors never fail the datapath; they
// are counted. Timestamps come from set_now(). Not thread-safe; `lower` and `writer` outlive it.
class PcapNetdev final : public Netdev {
 public:
  PcapNetdev(Netdev& lower, PcapWriter& writer) : lower_(lower), writer_(writer) {}

  void set_now(uint64_t now_ns) { now_ = now_ns; }  // time stamped on the records that follow
  uint64_t write_errors() const { return write_errors_; }

  const NetdevFeatures& features() const override { return lower_.features(); }
  const uint8_t* mac() const override { return lower_.mac(); }
  int ifindex() const override { return lower_.ifindex(); }
  int xmit(absl::Span<const TxFrame> frames) override;
  int poll_tx(absl::FunctionRef<void(uint64_t cookie)> done) override {
    return lower_.poll_tx(done);
  }
  int poll_rx(int budget, absl::FunctionRef<bool(const RxFrame&)> deliver) override;
  void rx_recycle(uint64_t buf_id) override { lower_.rx_recycle(buf_id); }
  int steer(const FlowKey& key) override { return lower_.steer(key); }
  int steer_to_kernel(const FlowKey& key) override { return lower_.steer_to_kernel(key); }
  int unsteer(const FlowKey& key) override { return lower_.unsteer(key); }
  int wait_fd() const override { return lower_.wait_fd(); }
  bool tx_completion_wakes() const override { return lower_.tx_completion_wakes(); }
  void flush_tx() override { lower_.flush_tx(); }
  void set_xmit_more(bool on) override { lower_.set_xmit_more(on); }
  bool xmit_more() const override { return lower_.xmit_more(); }

 private:
  Netdev& lower_;
  PcapWriter& writer_;
  uint64_t now_ = 0;
  uint64_t write_errors_ = 0;
};

}  // namespace xmit
