// verbs/ibv/sw/sw_objects.h — the software device's objects (internal to verbs/ibv/sw). Each embeds
// the rdma-core struct it stands for as its first member, so the ops cast between the two, as a
// provider does (to_mqp(), to_mcq() in rdma-core's mlx5).
#pragma once

#include <infiniband/verbs.h>
#include <sys/uio.h>

#include <cstdint>
#include <vector>

#include <memory>
#include <string>

#include "stack/dev/netdev.h"
#include "verbs/ibv/sw/sw_divert.h"
#include "verbs/ibv/sw/sw_verbs.h"

namespace xmit::ibv::sw {

struct SwDev;
struct SwQp;

inline constexpr uint16_t kMaxTsoHeader = 256;  // largest max_tso_header a QP may ask for
// A TSO WR's segments go to the carrier in batches (one sendmmsg() on AF_PACKET) of at most this
// many frames and bytes: a 64 KiB send at mss 1448 is one batch.
inline constexpr uint32_t kTsoBatchFrames = 64;
inline constexpr uint32_t kTsoBatchBytes = 128 * 1024;

struct SwCtx {
  ibv_context ctx{};
  SwDev* dev = nullptr;
};

struct SwPd {
  ibv_pd pd{};
  SwCtx* c = nullptr;
  int users = 0;  // MRs and QPs: dealloc_pd() is EBUSY while any remain
};

struct SwMr {
  ibv_mr mr{};
  SwPd* pd = nullptr;
  int access = 0;
};

struct SwCqe {
  ibv_wc wc{};
  SwQp* qp = nullptr;
  bool send = false;
  uint32_t wq_index = 0;  // the WR's position in its queue: polling it retires the queue up to it
};

// A completion channel. Its fd is an epoll set of the channel's own eventfd (armed CQs that got a
// completion) and the device's arrival fd (frames waiting on the carrier: the device turns them
// into completions when get_cq_event() or poll_cq() runs, as a NIC would on its own).
struct SwChannel {
  ibv_comp_channel ch{};
  SwCtx* c = nullptr;
  int efd = -1;
  std::vector<ibv_cq*> events;  // CQs with an event not yet taken, oldest first
};

struct SwCq {
  ibv_cq cq{};
  SwCtx* c = nullptr;
  SwChannel* channel = nullptr;
  bool armed = false;  // req_notify_cq() called and no event since
  std::vector<SwCqe> ring;  // cq.cqe + 1 entries... capacity is cq.cqe (what ibv_create_cq reports)
  uint32_t head = 0, count = 0;
  bool overrun = false;
  int users = 0;  // QPs: destroy_cq() is EBUSY while any remain
};

struct SwSendWqe {
  uint64_t wr_id = 0;
  bool signaled = false;
  unsigned send_flags = 0;
  int num_sge = 0;
  std::vector<ibv_sge> sge;      // cap.max_send_sge entries, allocated with the QP
  std::vector<uint8_t> inl;      // cap.max_inline_data bytes, allocated with the QP
  uint32_t inl_len = 0;
  ibv_wr_opcode opcode = IBV_WR_SEND;
  std::vector<uint8_t> tso_hdr;  // max_tso_header bytes: IBV_WR_TSO's header, copied at post
  uint16_t hdr_sz = 0, mss = 0;
};

struct SwRecvWqe {
  uint64_t wr_id = 0;
  int num_sge = 0;
  std::vector<ibv_sge> sge;  // cap.max_recv_sge entries
};

struct SwQp {
  ibv_qp qp{};
  SwCtx* c = nullptr;
  SwPd* pd = nullptr;
  SwCq* scq = nullptr;
  SwCq* rcq = nullptr;
  ibv_qp_cap cap{};
  bool sq_sig_all = false;
  uint16_t max_tso_header = 0;  // ibv_create_qp_ex() with IBV_QP_INIT_ATTR_MAX_TSO_HEADER; 0: no TSO
  // Send queue, free-running indices: [tail, proc) executed but not yet retired by poll_cq,
  // [proc, head) posted and not yet executed. Full when head - tail == size (mlx5_wq_overflow()).
  std::vector<SwSendWqe> sq;
  uint32_t sq_head = 0, sq_proc = 0, sq_tail = 0;
  // Receive queue: [tail, next) filled, completion not yet polled; [next, head) waiting for a frame.
  std::vector<SwRecvWqe> rq;
  uint32_t rq_head = 0, rq_next = 0, rq_tail = 0;
  int flows = 0;
};

// One flow rule with its specs folded into value/mask pairs (network byte order, as in the specs).
struct SwFlow {
  ibv_flow flow{};
  SwQp* qp = nullptr;
  uint16_t priority = 0;
  uint64_t seq = 0;  // creation order: ties between equal priorities go to the older rule
  uint8_t dmac[6] = {}, dmac_m[6] = {}, smac[6] = {}, smac_m[6] = {};
  uint16_t ether_type = 0, ether_type_m = 0;
  uint32_t sip = 0, sip_m = 0, dip = 0, dip_m = 0;
  uint8_t proto = 0;  // 0: any; IPPROTO_TCP/UDP when a TCP/UDP spec is present
  uint16_t sport = 0, sport_m = 0, dport = 0, dport_m = 0;
  bool diverted = false;  // its flow is in the divert map (kPacket)
  DivertKey divert_key;
};

struct SwDev {
  ibv_device dev{};
  SwDeviceConfig cfg;
  SwMemWire wire;
  SwStats st;
  bool hold = false;
  int fail_next_send = 0;  // an ibv_wc_status for the next executed send WR, 0: none
  int open_contexts = 0;
  int pkt_fd = -1;  // kPacket: opened by the first create_qp(), closed with the last context
  std::unique_ptr<SwDivert> divert;  // kPacket: with pkt_fd, where it can be attached
  std::string divert_why;            // why not, when it could not
  int ifindex = 0;
  uint32_t mtu = 1500;
  uint32_t next_key = 0x1000;
  uint32_t next_qpn = 0x40;
  uint64_t next_flow_seq = 0;
  std::vector<SwMr*> mrs;
  std::vector<SwQp*> qps;
  std::vector<SwFlow*> flows;
  std::vector<SwChannel*> channels;
  std::vector<uint8_t> scratch;      // a frame being sent or received (64 KiB + headers, allocated once)
  std::vector<uint8_t> seg_scratch;  // frames (TSO segments, plain sends) not yet on the wire (kTsoBatchBytes)
  std::vector<iovec> seg_batch;      // those frames (at most kTsoBatchFrames)
  std::vector<uint8_t> tso_hdr;      // a TSO WR's header while it is cut (its length fixed)
  std::vector<FrameSeg> tso_segs;    // that header and the WR's pieces (max_sge + 1)
};

// sw_flow.cc
int sw_flow_parse(const ibv_flow_attr* attr, SwFlow* out);  // 0 or a positive errno
bool sw_flow_match(const SwFlow& f, const uint8_t* frame, uint32_t len);

// sw_wire.cc: the AF_PACKET carrier. Open returns an fd or -errno; send 0 or -errno;
// recv the frame length, 0 when nothing waits, or -errno.
int sw_packet_open(const std::string& ifname, int* ifindex, uint32_t* mtu);
int sw_packet_send(int fd, int ifindex, const uint8_t* frame, uint32_t len);
// n frames in one sendmmsg(): how many left, or -errno when none did.
int sw_packet_send_batch(int fd, int ifindex, const iovec* frames, uint32_t n);
int sw_packet_recv(int fd, uint8_t* buf, uint32_t cap);

// IBV_SEND_IP_CSUM on a gathered frame: IPv4 header checksum and, for a first or only fragment
// of TCP/UDP, the complete L4 checksum (pseudo-header included).
void sw_fill_csums(uint8_t* frame, uint32_t len);

}  // namespace xmit::ibv::sw
