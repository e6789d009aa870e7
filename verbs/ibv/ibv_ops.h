// verbs/ibv/ibv_ops.h — IbvOps: the exact part of the verbs API (rdma-core's libibverbs) that the
// raw-packet backend uses, as one table of functions chosen at start: the real libibverbs
// (ibv_real_ops()) or the in-process software device (verbs/ibv/sw, ibv_sw_ops()).
// Nothing but verbs/ibv/ knows which one it talks to.
//
// Every entry keeps the libibverbs contract (man pages ibv_*(3), rdma-core 44):
//  - constructors return the object or nullptr with errno set;
//  - destroy/dealloc/dereg/modify/query return 0 or a positive errno value (not -1);
//  - post_send/post_recv return 0 or a positive errno and set *bad_wr to the first WR not posted;
//  - poll_cq returns the number of completions (>= 0) or a negative value on failure.
// The objects are rdma-core's own structs (ibv_qp::qp_num, ibv_mr::lkey, ibv_wc ...), so code
// above this table reads the same fields whichever implementation made them.
#pragma once

#include <infiniband/verbs.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace xmit::ibv {

struct IbvOps {
  const char* name;  // "libibverbs" or "software"

  // Which RDMA device and port carry network interface `ifname`: 0, or -ENODEV with *why saying
  // what was looked at. Real: sysfs (/sys/class/net/IF/device/infiniband/*); software: the
  // devices registered with sw_add_device().
  int (*netdev_to_ibdev)(const char* ifname, std::string* ibdev, uint8_t* port, std::string* why);

  ibv_device** (*get_device_list)(int* num_devices);
  void (*free_device_list)(ibv_device** list);
  const char* (*get_device_name)(ibv_device* device);
  ibv_context* (*open_device)(ibv_device* device);
  int (*close_device)(ibv_context* context);
  int (*query_device_ex)(ibv_context* context, const ibv_query_device_ex_input* input,
                         ibv_device_attr_ex* attr);
  int (*query_port)(ibv_context* context, uint8_t port_num, ibv_port_attr* port_attr);

  ibv_pd* (*alloc_pd)(ibv_context* context);
  int (*dealloc_pd)(ibv_pd* pd);
  ibv_mr* (*reg_mr)(ibv_pd* pd, void* addr, size_t length, int access);
  int (*dereg_mr)(ibv_mr* mr);

  ibv_cq* (*create_cq)(ibv_context* context, int cqe, void* cq_context, ibv_comp_channel* channel,
                       int comp_vector);
  int (*destroy_cq)(ibv_cq* cq);

  // Completion events (ibv_get_cq_event(3)): a channel whose fd turns readable when an armed CQ
  // (req_notify_cq) gets a completion; get_cq_event takes one event (-1/EAGAIN on a non-blocking
  // fd with none), ack_cq_events acknowledges them (destroy_cq waits for that on real devices).
  ibv_comp_channel* (*create_comp_channel)(ibv_context* context);
  int (*destroy_comp_channel)(ibv_comp_channel* channel);
  int (*req_notify_cq)(ibv_cq* cq, int solicited_only);
  int (*get_cq_event)(ibv_comp_channel* channel, ibv_cq** cq, void** cq_context);
  void (*ack_cq_events)(ibv_cq* cq, unsigned int nevents);
  ibv_qp* (*create_qp)(ibv_pd* pd, ibv_qp_init_attr* attr);
  // ibv_create_qp_ex(3): the only way to ask for max_tso_header (IBV_QP_INIT_ATTR_MAX_TSO_HEADER),
  // which IBV_WR_TSO needs.
  ibv_qp* (*create_qp_ex)(ibv_context* context, ibv_qp_init_attr_ex* attr);
  int (*modify_qp)(ibv_qp* qp, ibv_qp_attr* attr, int attr_mask);
  int (*destroy_qp)(ibv_qp* qp);

  int (*post_send)(ibv_qp* qp, ibv_send_wr* wr, ibv_send_wr** bad_wr);
  int (*post_recv)(ibv_qp* qp, ibv_recv_wr* wr, ibv_recv_wr** bad_wr);
  int (*poll_cq)(ibv_cq* cq, int num_entries, ibv_wc* wc);

  ibv_flow* (*create_flow)(ibv_qp* qp, ibv_flow_attr* flow);
  int (*destroy_flow)(ibv_flow* flow);
};

// The real libibverbs. ibv_post_send/post_recv/poll_cq/create_flow/query_port/query_device_ex are
// inline functions of verbs.h that dispatch through the provider's context ops: the entries call
// them (they are not reimplemented), so the provider's fast path is what runs.
const IbvOps& ibv_real_ops();

// The software device (verbs/ibv/sw/sw_verbs.h).
const IbvOps& ibv_sw_ops();

// The sysfs lookup behind ibv_real_ops().netdev_to_ibdev, with the sysfs root as a parameter so
// that tests can give it a tree of their own. Reads ROOT/class/net/IF/device/infiniband/ (one
// entry: the device name) and picks the port whose ROOT/class/infiniband/DEV/ports/N/gid_attrs/
// ndevs/0 names IF; without gid_attrs (older kernels) port ROOT/class/net/IF/dev_port + 1.
// Without device/infiniband (soft-RoCE rxe, siw: not the interface's own function) the first
// port of any device whose gid_attrs/ndevs/* names IF.
int sysfs_netdev_to_ibdev(const std::string& sysfs_root, const std::string& ifname, std::string* ibdev,
                          uint8_t* port, std::string* why);

}  // namespace xmit::ibv
