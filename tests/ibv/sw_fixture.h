// tests/ibv/sw_fixture.h — a software verbs device with the in-memory carrier, opened through
// ibv_sw_ops() as the backend opens it, for the device's contract tests.
#pragma once

#include <netinet/in.h>
#include <poll.h>

#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "verbs/ibv/ibv_ops.h"
#include "verbs/ibv/sw/sw_verbs.h"

namespace xmit::ibv::testing {

// A rule steering UDP or TCP to dst_ip:dst_port (network order), as ibv_create_flow(3) lays it
// out: the attribute followed by its specs.
struct FlowRule {
  ibv_flow_attr attr;
  ibv_flow_spec_eth eth;
  ibv_flow_spec_ipv4 ip;
  ibv_flow_spec_tcp_udp l4;
};
// The specs follow each other without padding (every spec is a multiple of 4 bytes), so the
// struct needs no packing.
static_assert(sizeof(FlowRule) ==
              sizeof(ibv_flow_attr) + sizeof(ibv_flow_spec_eth) + sizeof(ibv_flow_spec_ipv4) + sizeof(ibv_flow_spec_tcp_udp));

inline FlowRule flow_rule(uint8_t proto, uint32_t dst_ip, uint16_t dst_port, uint16_t priority = 0) {
  FlowRule r{};
  r.attr.type = IBV_FLOW_ATTR_NORMAL;
  r.attr.size = sizeof r;
  r.attr.priority = priority;
  r.attr.num_of_specs = 3;
  r.attr.port = 1;
  r.eth.type = IBV_FLOW_SPEC_ETH;
  r.eth.size = sizeof r.eth;
  r.eth.val.ether_type = htons(0x0800);
  r.eth.mask.ether_type = 0xffff;
  r.ip.type = IBV_FLOW_SPEC_IPV4;
  r.ip.size = sizeof r.ip;
  r.ip.val.dst_ip = dst_ip;
  r.ip.mask.dst_ip = dst_ip != 0 ? 0xffffffffu : 0;
  r.l4.type = proto == IPPROTO_TCP ? IBV_FLOW_SPEC_TCP : IBV_FLOW_SPEC_UDP;
  r.l4.size = sizeof r.l4;
  r.l4.val.dst_port = dst_port;
  r.l4.mask.dst_port = 0xffff;
  return r;
}

class SwDeviceTest : public ::testing::Test {
 protected:
  static constexpr const char* kDev = "xmit_sw_test";

  void open_device(const sw::SwDeviceConfig& cfg) {
    ASSERT_EQ(sw::sw_add_device(cfg), 0);
    int n = 0;
    ibv_device** list = ops_.get_device_list(&n);
    ASSERT_NE(list, nullptr);
    ASSERT_EQ(n, 1);
    EXPECT_STREQ(ops_.get_device_name(list[0]), cfg.name.c_str());
    ctx_ = ops_.open_device(list[0]);
    ops_.free_device_list(list);
    ASSERT_NE(ctx_, nullptr);
    pd_ = ops_.alloc_pd(ctx_);
    ASSERT_NE(pd_, nullptr);
    wire_ = sw::sw_mem_wire(cfg.name);
    ASSERT_NE(wire_, nullptr);
  }
  static sw::SwDeviceConfig config() {
    sw::SwDeviceConfig c;
    c.name = kDev;
    c.ifname = "lo";
    return c;
  }
  void SetUp() override { open_device(config()); }
  void TearDown() override {
    if (ctx_ != nullptr) {
      for (ibv_flow* f : flows_) EXPECT_EQ(ops_.destroy_flow(f), 0);
      for (ibv_qp* q : qps_) EXPECT_EQ(ops_.destroy_qp(q), 0);
      for (ibv_cq* c : cqs_) EXPECT_EQ(ops_.destroy_cq(c), 0);
      for (ibv_comp_channel* ch : channels_) EXPECT_EQ(ops_.destroy_comp_channel(ch), 0);
      for (ibv_mr* m : mrs_) EXPECT_EQ(ops_.dereg_mr(m), 0);
      EXPECT_EQ(ops_.dealloc_pd(pd_), 0);
      EXPECT_EQ(ops_.close_device(ctx_), 0);
      EXPECT_EQ(sw::sw_stats(kDev).live_objects, 0u);
    }
    EXPECT_EQ(sw::sw_remove_all_devices(), 0);
  }

  ibv_mr* reg(std::vector<uint8_t>& buf, int access = IBV_ACCESS_LOCAL_WRITE) {
    ibv_mr* m = ops_.reg_mr(pd_, buf.data(), buf.size(), access);
    EXPECT_NE(m, nullptr);
    if (m != nullptr) mrs_.push_back(m);
    return m;
  }
  ibv_cq* cq(int cqe) {
    ibv_cq* c = ops_.create_cq(ctx_, cqe, nullptr, nullptr, 0);
    EXPECT_NE(c, nullptr);
    if (c != nullptr) cqs_.push_back(c);
    return c;
  }
  ibv_qp* qp(ibv_cq* scq, ibv_cq* rcq, uint32_t send_wr, uint32_t recv_wr, uint32_t inl = 0) {
    ibv_qp_init_attr a{};
    a.send_cq = scq;
    a.recv_cq = rcq;
    a.qp_type = IBV_QPT_RAW_PACKET;
    a.cap.max_send_wr = send_wr;
    a.cap.max_recv_wr = recv_wr;
    a.cap.max_send_sge = 4;
    a.cap.max_recv_sge = 1;
    a.cap.max_inline_data = inl;
    ibv_qp* q = ops_.create_qp(pd_, &a);
    EXPECT_NE(q, nullptr);
    if (q != nullptr) qps_.push_back(q);
    return q;
  }
  int to_state(ibv_qp* q, ibv_qp_state s, int extra_mask = 0) {
    ibv_qp_attr a{};
    a.qp_state = s;
    a.port_num = 1;
    return ops_.modify_qp(q, &a, IBV_QP_STATE | extra_mask);
  }
  void to_rts(ibv_qp* q) {
    ASSERT_EQ(to_state(q, IBV_QPS_INIT, IBV_QP_PORT), 0);
    ASSERT_EQ(to_state(q, IBV_QPS_RTR), 0);
    ASSERT_EQ(to_state(q, IBV_QPS_RTS), 0);
  }
  ibv_flow* flow(ibv_qp* q, FlowRule r) {
    ibv_flow* f = ops_.create_flow(q, &r.attr);
    EXPECT_NE(f, nullptr);
    if (f != nullptr) flows_.push_back(f);
    return f;
  }
  void drop_flow(ibv_flow* f) {
    ASSERT_EQ(ops_.destroy_flow(f), 0);
    flows_.erase(std::find(flows_.begin(), flows_.end(), f));
  }
  static bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }
  std::vector<ibv_wc> poll(ibv_cq* c, int max = 64) {
    std::vector<ibv_wc> wc(static_cast<size_t>(max));
    int n = ops_.poll_cq(c, max, wc.data());
    EXPECT_GE(n, 0);
    wc.resize(size_t(n < 0 ? 0 : n));
    return wc;
  }

  const IbvOps& ops_ = ibv_sw_ops();
  ibv_context* ctx_ = nullptr;
  ibv_pd* pd_ = nullptr;
  sw::SwMemWire* wire_ = nullptr;
  std::vector<ibv_flow*> flows_;
  std::vector<ibv_qp*> qps_;
  std::vector<ibv_cq*> cqs_;
  std::vector<ibv_comp_channel*> channels_;
  std::vector<ibv_mr*> mrs_;
};

}  // namespace xmit::ibv::testing
