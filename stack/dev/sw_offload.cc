// stack/dev/sw_offload.cc — software TX offloads for the test devices (see sw_offload.h).
// kernel: skb_checksum_help() net/core/dev.c, ip_send_check(), tcp_gso_segment() net/ipv4/tcp_offload.c.
#include "stack/dev/sw_offload.h"

#include <cerrno>
#include <cstring>

#include "stack/base/byteorder.h"
#include "stack/base/checksum.h"

namespace xmit {
namespace {

constexpr uint32_t kEthHdrLen = 14;
constexpr uint16_t kEthPIp = 0x0800;
constexpr uint8_t kIpProtoTcp = 6;
constexpr uint8_t kTcpFin = 0x01, kTcpPsh = 0x08, kTcpCwr = 0x80;

// Length of the IPv4 header that follows an untagged Ethernet header, or 0 if there is none.
uint32_t ipv4_hdr_len(const uint8_t* frame, uint32_t len) {
  if (len < kEthHdrLen + 20 || load_be16(frame + 12) != kEthPIp) return 0;
  const uint8_t* ip = frame + kEthHdrLen;
  uint32_t ihl = (ip[0] & 0x0fu) * 4;
  if ((ip[0] >> 4) != 4 || ihl < 20 || kEthHdrLen + ihl > len) return 0;
  return ihl;
}

// kernel: ip_send_check(), net/ipv4/ip_output.c
void ip_send_check(uint8_t* ip, uint32_t ihl) {
  store_be16(ip + 10, 0);
  const sum16 check = ip_fast_csum(ip, ihl / 4);
  std::memcpy(ip + 10, &check, 2);
}

// Stores a folded checksum computed over [p, p + len) plus `sum` at `field`; 0 as CSUM_MANGLED_0
// when `mangle0` (UDP's rule, which skb_checksum_help() applies to every protocol).
void store_csum(uint8_t* field, const uint8_t* p, size_t len, wsum sum, bool mangle0) {
  sum16 check = csum_fold(csum_partial(p, len, sum));
  if (mangle0 && check == 0) check = CSUM_MANGLED_0;
  std::memcpy(field, &check, 2);
}

}  // namespace

int tso_geom(const uint8_t* frame, uint32_t avail, uint32_t len, TsoGeom* g) {
  g->ihl = ipv4_hdr_len(frame, avail);
  if (g->ihl == 0) return -EINVAL;
  const uint8_t* ip = frame + kEthHdrLen;
  const uint32_t ip_end = kEthHdrLen + load_be16(ip + 2);  // Ethernet padding is not payload
  if (ip[9] != kIpProtoTcp || ip_end > len || ip_end < kEthHdrLen + g->ihl + 20) return -EINVAL;
  if ((load_be16(ip + 6) & 0x3fff) != 0) return -EINVAL;  // a fragment cannot be segmented
  g->tcp_off = kEthHdrLen + g->ihl;
  if (g->tcp_off + 20 > avail) return -EINVAL;
  g->hdr_len = g->tcp_off + (frame[g->tcp_off + 12] >> 4) * 4u;
  if (g->hdr_len < g->tcp_off + 20 || g->hdr_len > ip_end || g->hdr_len > avail) return -EINVAL;
  g->payload = ip_end - g->hdr_len;
  g->seq0 = load_be32(frame + g->tcp_off + 4);
  g->id0 = load_be16(ip + 4);
  std::memcpy(&g->saddr, ip + 12, 4);
  std::memcpy(&g->daddr, ip + 16, 4);
  return 0;
}

void tso_segment_headers(uint8_t* seg, const TsoGeom& g, int n, uint32_t off, uint32_t chunk) {
  const bool last = off + chunk == g.payload;
  uint8_t* sip = seg + kEthHdrLen;
  uint8_t* th = seg + g.tcp_off;
  const uint32_t seg_len = g.hdr_len + chunk;
  // kernel: inet_gso_segment(): each segment gets its own tot_len and the next IP id.
  store_be16(sip + 2, static_cast<uint16_t>(seg_len - kEthHdrLen));
  store_be16(sip + 4, static_cast<uint16_t>(g.id0 + n));
  ip_send_check(sip, g.ihl);
  // kernel: tcp_gso_segment(): seq advances by the payload; FIN and PSH only on the last
  // segment, CWR only on the first.
  store_be32(th + 4, g.seq0 + off);
  if (!last) th[13] &= static_cast<uint8_t>(~(kTcpFin | kTcpPsh));
  if (n != 0) th[13] &= static_cast<uint8_t>(~kTcpCwr);
}

namespace {

// Segment n (its headers and `chunk` payload bytes from payload offset `off` in place at `seg`):
// its own header fields, both checksums finished.
void tso_finish_segment(uint8_t* seg, const TsoGeom& g, int n, uint32_t off, uint32_t chunk) {
  tso_segment_headers(seg, g, n, off, chunk);
  uint8_t* th = seg + g.tcp_off;
  const uint32_t tcp_len = g.hdr_len + chunk - g.tcp_off;
  store_be16(th + 16, 0);
  store_csum(th + 16, th, tcp_len, csum_tcpudp_nofold(g.saddr, g.daddr, tcp_len, kIpProtoTcp, 0), false);
}

// Copies bytes [off, off + len) of f's segments to dst.
void gather_range(const TxFrame& f, uint32_t off, uint32_t len, uint8_t* dst) {
  for (const FrameSeg& s : f.segs) {
    if (len == 0) return;
    if (off >= s.len) {
      off -= s.len;
      continue;
    }
    const uint32_t n = s.len - off < len ? s.len - off : len;
    std::memcpy(dst, s.data + off, n);
    dst += n;
    len -= n;
    off = 0;
  }
}

}  // namespace

uint32_t tx_frame_len(const TxFrame& f) {
  uint32_t len = 0;
  for (const FrameSeg& s : f.segs) len += s.len;
  return len;
}

int tx_frame_check(const TxFrame& f, const NetdevFeatures& feat) {
  constexpr uint32_t kKnownFlags = kTxIpCsum | kTxL4Csum | kTxTso;
  if (f.segs.empty() || f.segs.size() > feat.max_segs) return -EINVAL;
  for (const FrameSeg& s : f.segs) {
    if (s.data == nullptr && s.len != 0) return -EINVAL;
  }
  if ((f.flags & ~kKnownFlags) != 0) return -EINVAL;
  if ((f.flags & kTxIpCsum) && !feat.ip_csum) return -EINVAL;
  if ((f.flags & kTxL4Csum) && !feat.l4_csum) return -EINVAL;
  if ((f.flags & kTxTso) && !feat.tso) return -EINVAL;
  const uint32_t len = tx_frame_len(f);
  if (f.flags & kTxTso) {
    if (f.gso_size == 0) return -EINVAL;
    if (len > feat.tso_max_size) return -EMSGSIZE;
  } else if (len > feat.max_frame) {
    return -EMSGSIZE;
  }
  if ((f.flags & kTxL4Csum) && uint32_t{f.csum_start} + f.csum_offset + 2 > len) return -EINVAL;
  return 0;
}

uint32_t tx_frame_gather(const TxFrame& f, uint8_t* dst) {
  uint32_t off = 0;
  for (const FrameSeg& s : f.segs) {
    if (s.len != 0) std::memcpy(dst + off, s.data, s.len);
    off += s.len;
  }
  return off;
}

int tx_finish_csum(uint8_t* frame, uint32_t len, uint32_t flags, uint16_t csum_start,
                   uint16_t csum_offset) {
  if (flags & kTxIpCsum) {
    const uint32_t ihl = ipv4_hdr_len(frame, len);
    if (ihl == 0) return -EINVAL;
    ip_send_check(frame + kEthHdrLen, ihl);
  }
  if (flags & kTxL4Csum) {
    // kernel: skb_checksum_help(): sum [csum_start, len) over the pseudo-header sum the stack
    // left in the field, store it folded at csum_start + csum_offset; 0 becomes CSUM_MANGLED_0.
    if (uint32_t{csum_start} + csum_offset + 2 > len) return -EINVAL;
    store_csum(frame + csum_start + csum_offset, frame + csum_start, len - csum_start, 0, true);
  }
  return 0;
}

int tso_segment(const uint8_t* frame, uint32_t len, uint16_t gso_size, uint8_t* scratch,
                uint32_t scratch_len, absl::FunctionRef<bool(const uint8_t*, uint32_t)> emit) {
  TsoGeom g;
  if (gso_size == 0 || tso_geom(frame, len, len, &g) != 0) return -EINVAL;
  if (g.hdr_len + (g.payload < gso_size ? g.payload : gso_size) > scratch_len) return -EMSGSIZE;
  int nsegs = 0;
  uint32_t off = 0;
  do {
    const uint32_t chunk = g.payload - off < gso_size ? g.payload - off : gso_size;
    std::memcpy(scratch, frame, g.hdr_len);
    std::memcpy(scratch + g.hdr_len, frame + g.hdr_len + off, chunk);
    tso_finish_segment(scratch, g, nsegs, off, chunk);
    ++nsegs;
    if (!emit(scratch, g.hdr_len + chunk)) break;
    off += chunk;
  } while (off < g.payload);
  return nsegs;
}

// A TSO frame's headers gathered into `hdr` and its geometry. 0 or -EINVAL (not a TSO frame).
static int tso_frame_geom(const TxFrame& f, uint8_t (&hdr)[kTsoMaxHeader], TsoGeom* g) {
  const uint32_t len = tx_frame_len(f);
  const uint32_t avail = len < kTsoMaxHeader ? len : kTsoMaxHeader;
  gather_range(f, 0, avail, hdr);
  return f.gso_size == 0 || tso_geom(hdr, avail, len, g) != 0 ? -EINVAL : 0;
}

int tso_segs(const TxFrame& f) {
  uint8_t hdr[kTsoMaxHeader];
  TsoGeom g;
  if (tso_frame_geom(f, hdr, &g) != 0) return -EINVAL;
  return g.payload == 0 ? 1 : static_cast<int>((g.payload + f.gso_size - 1) / f.gso_size);
}

int tso_segment_sg(const TxFrame& f, absl::FunctionRef<uint8_t*(int n)> dst,
                   absl::FunctionRef<void(int n, uint32_t len)> written) {
  uint8_t hdr[kTsoMaxHeader];
  TsoGeom g;
  if (tso_frame_geom(f, hdr, &g) != 0) return -EINVAL;
  int nsegs = 0;
  uint32_t off = 0;
  do {
    const uint32_t chunk = g.payload - off < f.gso_size ? g.payload - off : f.gso_size;
    uint8_t* seg = dst(nsegs);
    std::memcpy(seg, hdr, g.hdr_len);
    gather_range(f, g.hdr_len + off, chunk, seg + g.hdr_len);
    tso_finish_segment(seg, g, nsegs, off, chunk);
    written(nsegs, g.hdr_len + chunk);
    ++nsegs;
    off += chunk;
  } while (off < g.payload);
  return nsegs;
}

}  // namespace xmit
