// stack/dev/pcap.cc — pcap writer and recording decorator (see pcap.h).
// Format: https://wiki.wireshark.org/Development/LibpcapFileFormat (tcpdump.org/manpages/pcap-savefile.5).
#include "stack/dev/pcap.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

namespace xmit {
namespace {

constexpr uint32_t kMagicMicro = 0xa1b2c3d4;
constexpr uint32_t kMagicNano = 0xa1b23c4d;
constexpr uint32_t kLinktypeEthernet = 1;
constexpr uint32_t kDefaultSnaplen = 262144;

void put32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, sizeof(v)); }
void put16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, sizeof(v)); }

long sys_ret(long r) { return r < 0 ? -errno : r; }

}  // namespace

PcapWriter::~PcapWriter() { close(); }

int PcapWriter::open(const char* path, const PcapOptions& opts) {
  if (fd_ >= 0) return -EBUSY;
  long fd = sys_ret(syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                            0644));
  if (fd < 0) return static_cast<int>(fd);
  int err = start(static_cast<int>(fd), /*owned=*/true, opts);
  if (err < 0) close();
  return err;
}

int PcapWriter::attach(int fd, const PcapOptions& opts) {
  if (fd_ >= 0) return -EBUSY;
  if (fd < 0) return -EBADF;
  int err = start(fd, /*owned=*/false, opts);
  if (err < 0) close();
  return err;
}

int PcapWriter::start(int fd, bool owned, const PcapOptions& opts) {
  fd_ = fd;
  owned_ = owned;
  error_ = 0;
  used_ = 0;
  packets_ = 0;
  opts_ = opts;
  if (opts_.snaplen == 0) opts_.snaplen = kDefaultSnaplen;
  if (opts_.buffer_size < 64) opts_.buffer_size = 64;
  buf_.reset(new (std::nothrow) uint8_t[opts_.buffer_size]);
  if (!buf_) return error_ = -ENOMEM;
  uint8_t hdr[24];
  put32(hdr, opts_.ts_unit == PcapTsUnit::kNano ? kMagicNano : kMagicMicro);
  put16(hdr + 4, 2);  // version_major
  put16(hdr + 6, 4);  // version_minor
  put32(hdr + 8, 0);  // thiszone: timestamps are UTC
  put32(hdr + 12, 0);  // sigfigs
  put32(hdr + 16, opts_.snaplen);
  put32(hdr + 20, kLinktypeEthernet);
  return append(hdr, sizeof(hdr));
}

int PcapWriter::append(const uint8_t* p, uint32_t len) {
  while (len != 0) {
    if (used_ == opts_.buffer_size) {
      if (int err = flush(); err < 0) return err;
    }
    const uint32_t n = len < opts_.buffer_size - used_ ? len : opts_.buffer_size - used_;
    std::memcpy(buf_.get() + used_, p, n);
    used_ += n;
    p += n;
    len -= n;
  }
  return 0;
}

int PcapWriter::write(uint64_t ts_ns, absl::Span<const FrameSeg> segs) {
  if (fd_ < 0) return -EBADF;
  if (error_ < 0) return error_;
  uint64_t len = 0;
  for (const FrameSeg& s : segs) len += s.len;
  const uint32_t orig_len = len > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(len);
  uint32_t caplen = orig_len < opts_.snaplen ? orig_len : opts_.snaplen;
  uint8_t rec[16];
  const uint64_t frac = ts_ns % 1000000000u;
  put32(rec, static_cast<uint32_t>(ts_ns / 1000000000u));
  put32(rec + 4, static_cast<uint32_t>(opts_.ts_unit == PcapTsUnit::kNano ? frac : frac / 1000));
  put32(rec + 8, caplen);
  put32(rec + 12, orig_len);
  if (int err = append(rec, sizeof(rec)); err < 0) return err;
  for (const FrameSeg& s : segs) {
    if (caplen == 0) break;
    const uint32_t n = s.len < caplen ? s.len : caplen;
    if (int err = append(s.data, n); err < 0) return err;
    caplen -= n;
  }
  ++packets_;
  return 0;
}

int PcapWriter::write(uint64_t ts_ns, const uint8_t* data, uint32_t len) {
  const FrameSeg seg{.data = data, .len = len};
  return write(ts_ns, absl::MakeConstSpan(&seg, 1));
}

int PcapWriter::flush() {
  if (fd_ < 0) return -EBADF;
  if (error_ < 0) return error_;
  uint32_t off = 0;
  while (off < used_) {
    long n = sys_ret(syscall(SYS_write, fd_, buf_.get() + off, size_t{used_ - off}));
    if (n == -EINTR) continue;
    if (n <= 0) return error_ = n < 0 ? static_cast<int>(n) : -EIO;
    off += static_cast<uint32_t>(n);
  }
  used_ = 0;
  return 0;
}

int PcapWriter::close() {
  if (fd_ < 0) return 0;
  int err = flush();
  if (owned_) {
    long r = sys_ret(syscall(SYS_close, fd_));
    if (err == 0 && r < 0 && r != -EINTR) err = static_cast<int>(r);
  }
  fd_ = -1;
  owned_ = false;
  buf_.reset();
  used_ = 0;
  return err;
}

int PcapNetdev::xmit(absl::Span<const TxFrame> frames) {
  const int n = lower_.xmit(frames);
  for (int i = 0; i < n; ++i) {
    if (writer_.write(now_, frames[i].segs) < 0) ++write_errors_;
  }
  return n;
}

int PcapNetdev::poll_rx(int budget, absl::FunctionRef<bool(const RxFrame&)> deliver) {
  return lower_.poll_rx(budget, [&](const RxFrame& f) {
    if (writer_.write(now_, f.data, f.len) < 0) ++write_errors_;
    return deliver(f);
  });
}

}  // namespace xmit
