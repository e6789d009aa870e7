// verbs/ibv/sw/sw_verbs.h — the software verbs device: an in-process RDMA device with one
// Ethernet port that implements, behind ibv_sw_ops() (verbs/ibv/ibv_ops.h), exactly the verbs the
// raw-packet backend uses, with the contract of real providers (rdma-core mlx5, the kernel's rxe):
// PD, MR (lkey, bounds, access), CQ (depth, in-order completions, overrun), IBV_QPT_RAW_PACKET QPs
// (RESET->INIT->RTR->RTS, a full send queue refused with ENOMEM, a bad sge completed with
// IBV_WC_LOC_PROT_ERR and the QP moved to the error state), receive completions and flow rules
// (ETH/IPv4/TCP/UDP specs, priorities; no rule matched -> the frame is the kernel's).
//
// It lives in the product tree (not tests/) because libxmit.so itself can run on it: the end-to-end
// tests run XMIT_BACKEND=verbs on this device over a namespace bed's veth, carried by an AF_PACKET
// socket, on machines without an RDMA NIC. Unit tests carry frames in memory instead.
//
// This file is the device's control panel for tests and for the preload: register devices, reach
// the in-memory wire, hold the "hardware" (posted sends wait until released), read counters.
// Threading: every entry point, the ops included, takes one process-wide lock.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"

namespace xmit::ibv::sw {

enum class SwCarrier {
  kMemory,  // frames sent land in SwMemWire::sent; frames to receive are SwMemWire::inject()ed
  kPacket,  // an AF_PACKET socket bound to `ifname` (needs CAP_NET_RAW, as a raw QP does); flows a
            // rule takes are kept from the kernel by a tcx ingress program where it can be attached
            // (CAP_BPF, Linux 6.6), else the kernel sees them too (SwStats::divert_active == 0)
};

// What the device is and reports through query_device_ex()/query_port().
struct SwDeviceConfig {
  std::string name = "xmit_sw0";  // ibv_get_device_name()
  std::string ifname;             // the network interface the port is (netdev_to_ibdev)
  SwCarrier carrier = SwCarrier::kMemory;
  uint32_t max_qp_wr = 4096;      // ibv_device_attr.max_qp_wr
  uint32_t max_sge = 16;          // ibv_device_attr.max_sge
  uint32_t max_cqe = 65536;       // ibv_device_attr.max_cqe
  uint32_t max_inline_data = 256; // largest inline send a QP may ask for
  uint32_t max_flows = 256;       // flow rules per device; the next create_flow() fails ENOMEM
  bool ip_csum = false;           // IBV_RAW_PACKET_CAP_IP_CSUM: IBV_SEND_IP_CSUM fills IPv4 + TCP/UDP sums
  uint32_t max_tso = 0;           // tso_caps.max_tso (payload bytes, at most 65536); 0: no TSO
  uint32_t mtu = 1500;            // kMemory; kPacket reads the interface's MTU when the QP opens it
};

// Counters, per device (they survive close/open, so a test can read them after the backend is gone).
struct SwStats {
  uint64_t tx_frames = 0;         // frames put on the wire
  uint64_t tx_bytes = 0;
  uint64_t tx_wire_errors = 0;    // the carrier refused a frame (AF_PACKET sendto failed): lost
  uint64_t tx_errors = 0;         // send WRs completed with an error status (flushes excluded)
  uint64_t rx_frames = 0;         // frames delivered into a receive WR
  uint64_t rx_to_kernel = 0;      // frames no flow rule matched
  uint64_t rx_no_wqe = 0;         // matched a rule but the QP had no receive WR (hardware: out of buffer)
  uint64_t rx_qp_not_ready = 0;   // matched a rule of a QP not in RTR/RTS: dropped
  uint64_t rx_errors = 0;         // receive WRs completed with an error status
  uint64_t flushed = 0;           // WRs completed with IBV_WC_WR_FLUSH_ERR
  uint64_t cq_overruns = 0;       // a completion found its CQ full (IBV_EVENT_CQ_ERR on hardware)
  uint64_t dereg_in_flight = 0;   // dereg_mr() of an MR that a posted, unfinished send WR still reads
  uint64_t open_contexts = 0;
  uint64_t divert_active = 0;     // kPacket: 1 while the tc ingress program keeps ruled flows from the kernel
  uint64_t diverted_rules = 0;    // flow rules the kernel is currently kept from
  uint64_t undivertable_rules = 0;  // rules created that the divert map cannot express (the kernel sees them too)
  uint64_t live_objects = 0;      // PDs, MRs, CQs, QPs and flows not yet destroyed
};

// The in-memory carrier of a kMemory device.
struct SwMemWire {
  std::deque<std::vector<uint8_t>> sent;     // frames the device transmitted, oldest first
  std::deque<std::vector<uint8_t>> inbound;  // frames waiting to arrive (taken at the next poll_cq
                                             // or get_cq_event)
  std::deque<std::vector<uint8_t>> kernel;   // arrived frames no flow rule took
  int arrival_fd = -1;  // an eventfd, readable while `inbound` has frames (the "link" interrupt)
  void inject(const uint8_t* frame, uint32_t len);
};

// 0, -EEXIST (a device of that name exists), -EINVAL (empty name or interface).
int sw_add_device(const SwDeviceConfig& cfg);
// What the preload does for the software device (XMIT_BACKEND=verbs on a machine without an RDMA
// NIC): a kPacket device named "xmit_sw_IFNAME" bound to `ifname`, added once (later calls find
// it, with the offloads it was made with). `offloads`: it reports what an mlx5 NIC reports,
// IBV_RAW_PACKET_CAP_IP_CSUM and TSO on raw packet QPs (tso_caps.max_tso 65536), so the backend
// posts 64 KiB GSO skbs as IBV_WR_TSO; without, neither (the stack finishes every checksum and
// cuts GSO skbs into MSS frames itself, software GSO: XMIT_VERBS_SW_OFFLOADS=off). 0 or -EINVAL; *name gets the device's name.
int sw_attach_interface(const std::string& ifname, bool offloads, std::string* name);

// Every fd the software devices hold: carriers (AF_PACKET socket, arrival eventfd), the divert
// program's link, maps and BTF, completion channels (epoll set and eventfd). For the preload's
// own-fd registry and a forked child, which closes them.
void sw_for_each_fd(absl::FunctionRef<void(int fd)> f);
// A fork()ed child: resets the lock (a parent thread may have held it at fork), passes every fd of
// sw_for_each_fd() to close_fd, and forgets every device and object the parent had (abandoned, not
// destroyed: their destructors would act on fd numbers the child may reuse), so that the child's
// next sw_attach_interface() starts afresh. Only in the child, before it starts threads.
void sw_forget_after_fork(absl::FunctionRef<void(int fd)> close_fd);

// Removes every device; -EBUSY while a context is open.
int sw_remove_all_devices();

// The wire of a kMemory device, or nullptr. Valid until sw_remove_all_devices(). Use it with the
// device lock held: call it between ops, from the thread that calls them.
SwMemWire* sw_mem_wire(const std::string& name);

// Holding the device: send WRs are accepted (and count against the send queue) but not executed
// until it is released, as a stalled NIC. Releasing executes them all in order.
void sw_hold(const std::string& name, bool hold);

// The next send WR the device executes completes with `status` (IBV_WC_LOC_PROT_ERR, ...), as a
// fault in hardware would: the QP goes to the error state and flushes the rest.
void sw_fail_next_send(const std::string& name, int status);

SwStats sw_stats(const std::string& name);

}  // namespace xmit::ibv::sw
