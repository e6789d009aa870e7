// stack/dev/sw_offload.h — what a NIC does to a frame on its way out, done in software for the test
// devices: check a TxFrame against the features, gather it, finish its checksums, split TSO frames.
// Kernel counterparts: netif_skb_features(), skb_checksum_help(), ip_send_check(), tcp_gso_segment().
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/functional/function_ref.h"
#include "stack/base/byteorder.h"
#include "stack/dev/netdev.h"

namespace xmit {

// Total length of a frame: the sum of its segments.
uint32_t tx_frame_len(const TxFrame& f);

// 0 or -errno, the rules Netdev::xmit() applies to every frame:
//  -EINVAL   no segments, more than max_segs, an unknown flag, an offload flag the device lacks,
//            csum_start/csum_offset outside the frame, kTxTso without gso_size;
//  -EMSGSIZE longer than max_frame (without kTxTso) or than tso_max_size (with it).
int tx_frame_check(const TxFrame& f, const NetdevFeatures& feat);

// Copies the segments of `f` into `dst`, which holds at least tx_frame_len(f) bytes.
uint32_t tx_frame_gather(const TxFrame& f, uint8_t* dst);

// Finishes kTxIpCsum and kTxL4Csum on a gathered frame, as the NIC would. 0, or -EINVAL when
// kTxIpCsum is set but the frame carries no valid IPv4 header after an untagged Ethernet header.
int tx_finish_csum(uint8_t* frame, uint32_t len, uint32_t flags, uint16_t csum_start,
                   uint16_t csum_offset);

// Splits a gathered Ethernet/IPv4/TCP frame into segments of at most gso_size payload bytes, each
// with its own IP total length, IP id, TCP sequence number, flags and both checksums finished.
// `emit(seg, len)` gets each segment in a scratch buffer valid during the call; it returns false to
// stop early. Returns the number of segments emitted, or -EINVAL when the frame is not IPv4/TCP.
// kernel: tcp_gso_segment() (net/ipv4/tcp_offload.c), inet_gso_segment() (net/ipv4/af_inet.c).
int tso_segment(const uint8_t* frame, uint32_t len, uint16_t gso_size, uint8_t* scratch,
                uint32_t scratch_len, absl::FunctionRef<bool(const uint8_t*, uint32_t)> emit);

// A TSO frame's headers: where the TCP header and the payload start, the first segment's sequence
// number and IP id, the addresses (network order).
struct TsoGeom {
  uint32_t ihl = 0, tcp_off = 0, hdr_len = 0, payload = 0;
  uint32_t seq0 = 0;
  uint16_t id0 = 0;
  be32 saddr = 0, daddr = 0;
};

// Parses the Ethernet/IPv4/TCP headers at the front of a frame of `len` bytes, of which `avail`
// (at least the headers) are at `frame`. 0 or -EINVAL (not IPv4/TCP, a fragment, lengths that do
// not add up).
int tso_geom(const uint8_t* frame, uint32_t avail, uint32_t len, TsoGeom* g);

// The header fields of segment n, which carries `chunk` payload bytes from payload offset `off`,
// in a copy of the frame's headers at `seg`: IP tot_len, id (id0 + n) and header checksum, TCP seq,
// FIN and PSH cleared but on the last segment, CWR but on the first. The TCP checksum is the
// caller's. kernel: the per-segment loops of inet_gso_segment() and tcp_gso_segment()
void tso_segment_headers(uint8_t* seg, const TsoGeom& g, int n, uint32_t off, uint32_t chunk);

// The longest Ethernet + IPv4 + TCP header tso_segs() and tso_segment_sg() read.
inline constexpr uint32_t kTsoMaxHeader = 14 + 60 + 60;

// How many segments tso_segment_sg() cuts `f` (kTxTso, Ethernet/IPv4/TCP) into, or -EINVAL.
int tso_segs(const TxFrame& f);

// tso_segment() for a frame still in its segments (f.gso_size payload bytes a segment): segment n
// is written straight to dst(n), which has room for the headers and gso_size bytes; written(n, len)
// follows with its length. No intermediate copy. Returns the number of segments, or -EINVAL.
int tso_segment_sg(const TxFrame& f, absl::FunctionRef<uint8_t*(int n)> dst,
                   absl::FunctionRef<void(int n, uint32_t len)> written);

}  // namespace xmit
