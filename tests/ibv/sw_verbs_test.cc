// tests/ibv/sw_verbs_test.cc — the software verbs device against the verbs contract the backend
// relies on: the raw-packet QP state machine, send-queue accounting with selective signalling,
// errnos of post_send/post_recv, error and flush completions, inline sends, receive completions,
// flow rules and priorities, CQ overrun, and the objects' lifetimes.
#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>

#include "tests/dev/test_frames.h"
#include "tests/ibv/sw_fixture.h"

namespace xmit::ibv::testing {
namespace {

using xmit::testing::L4Spec;
using xmit::testing::make_frame;

ibv_send_wr send_wr(uint64_t id, ibv_sge* sge, int n, unsigned flags = 0) {
  ibv_send_wr w{};
  w.wr_id = id;
  w.sg_list = sge;
  w.num_sge = n;
  w.opcode = IBV_WR_SEND;
  w.send_flags = flags;
  return w;
}

ibv_sge sge_of(const uint8_t* p, uint32_t len, ibv_mr* mr) {
  return ibv_sge{reinterpret_cast<uint64_t>(p), len, mr->lkey};
}

TEST_F(SwDeviceTest, RawPacketStateMachine) {
  ibv_cq* c = cq(16);
  ibv_qp* q = qp(c, c, 4, 4);
  EXPECT_EQ(q->state, IBV_QPS_RESET);
  std::vector<uint8_t> buf(64);
  ibv_mr* mr = reg(buf);
  ibv_sge s = sge_of(buf.data(), 64, mr);
  ibv_send_wr w = send_wr(1, &s, 1), *bad = nullptr;
  EXPECT_EQ(ops_.post_send(q, &w, &bad), EINVAL);  // not in RTS
  EXPECT_EQ(bad, &w);
  ibv_recv_wr r{.wr_id = 9, .next = nullptr, .sg_list = &s, .num_sge = 1}, *rbad = nullptr;
  EXPECT_EQ(ops_.post_recv(q, &r, &rbad), EINVAL);  // RESET takes no receive WRs
  EXPECT_EQ(to_state(q, IBV_QPS_RTR), EINVAL);               // RESET -> RTR skips INIT
  EXPECT_EQ(to_state(q, IBV_QPS_INIT), EINVAL);              // RESET -> INIT needs IBV_QP_PORT
  ibv_qp_attr a{};
  a.qp_state = IBV_QPS_INIT;
  a.port_num = 2;
  EXPECT_EQ(ops_.modify_qp(q, &a, IBV_QP_STATE | IBV_QP_PORT), EINVAL);  // one port
  EXPECT_EQ(ops_.modify_qp(q, &a, IBV_QP_PORT), EINVAL);                 // no IBV_QP_STATE
  EXPECT_EQ(to_state(q, IBV_QPS_INIT, IBV_QP_PORT), 0);
  EXPECT_EQ(ops_.post_recv(q, &r, &rbad), 0);  // INIT takes receive WRs
  EXPECT_EQ(to_state(q, IBV_QPS_RTS), EINVAL);  // INIT -> RTS skips RTR
  EXPECT_EQ(to_state(q, IBV_QPS_RTR, IBV_QP_PORT), EINVAL);
  EXPECT_EQ(to_state(q, IBV_QPS_RTR), 0);
  EXPECT_EQ(to_state(q, IBV_QPS_RTS), 0);
  EXPECT_EQ(q->state, IBV_QPS_RTS);
  EXPECT_EQ(ops_.post_send(q, &w, &bad), 0);
  EXPECT_EQ(to_state(q, IBV_QPS_RESET), 0);  // discards the receive WR without a completion
  EXPECT_TRUE(poll(c).empty());
}

TEST_F(SwDeviceTest, CreateQpRoundsQueuesUpAndRefusesWhatTheDeviceLacks) {
  ibv_cq* c = cq(16);
  ibv_qp_init_attr a{};
  a.send_cq = c;
  a.recv_cq = c;
  a.qp_type = IBV_QPT_RAW_PACKET;
  a.cap = {.max_send_wr = 5, .max_recv_wr = 3, .max_send_sge = 2, .max_recv_sge = 1, .max_inline_data = 64};
  ibv_qp* q = ops_.create_qp(pd_, &a);
  ASSERT_NE(q, nullptr);
  qps_.push_back(q);
  EXPECT_EQ(a.cap.max_send_wr, 8u);
  EXPECT_EQ(a.cap.max_recv_wr, 4u);
  a.cap.max_inline_data = config().max_inline_data + 1;
  errno = 0;
  EXPECT_EQ(ops_.create_qp(pd_, &a), nullptr);
  EXPECT_EQ(errno, EINVAL);
  a.cap.max_inline_data = 0;
  a.qp_type = IBV_QPT_RC;
  EXPECT_EQ(ops_.create_qp(pd_, &a), nullptr);
  EXPECT_EQ(errno, EOPNOTSUPP);
  // ibv_create_cq(3): at least the entries asked for; mlx5 sizes it 2^k - 1.
  EXPECT_EQ(c->cqe, 31);
}

TEST_F(SwDeviceTest, SendGathersSgesAndCompletesSignaledWrs) {
  ibv_cq* c = cq(16);
  ibv_qp* q = qp(c, c, 8, 1);
  to_rts(q);
  std::vector<uint8_t> buf(256);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = uint8_t(i);
  ibv_mr* mr = reg(buf);
  ibv_sge s[2] = {sge_of(buf.data(), 20, mr), sge_of(buf.data() + 100, 50, mr)};
  ibv_send_wr w = send_wr(77, s, 2, IBV_SEND_SIGNALED), *bad = nullptr;
  ASSERT_EQ(ops_.post_send(q, &w, &bad), 0);
  ASSERT_EQ(wire_->sent.size(), 1u);
  std::vector<uint8_t> want(buf.begin(), buf.begin() + 20);
  want.insert(want.end(), buf.begin() + 100, buf.begin() + 150);
  EXPECT_EQ(wire_->sent[0], want);
  auto wc = poll(c);
  ASSERT_EQ(wc.size(), 1u);
  EXPECT_EQ(wc[0].wr_id, 77u);
  EXPECT_EQ(wc[0].status, IBV_WC_SUCCESS);
  EXPECT_EQ(wc[0].opcode, IBV_WC_SEND);
  EXPECT_EQ(wc[0].qp_num, q->qp_num);
}

// mlx5_wq_overflow(): a send-queue slot is free again only when a completion at or after it has
// been polled. Unsignaled WRs therefore hold their slots until a later signaled one is reaped.
TEST_F(SwDeviceTest, FullSendQueueIsEnomemUntilASignaledCompletionIsPolled) {
  ibv_cq* c = cq(16);
  ibv_qp* q = qp(c, c, 4, 1);
  to_rts(q);
  std::vector<uint8_t> buf(64);
  ibv_mr* mr = reg(buf);
  ibv_sge s = sge_of(buf.data(), 64, mr);
  std::vector<ibv_send_wr> w;
  for (int i = 0; i < 6; ++i) w.push_back(send_wr(uint64_t(i), &s, 1, i == 3 ? IBV_SEND_SIGNALED : 0));
  for (int i = 0; i < 5; ++i) w[size_t(i)].next = &w[size_t(i) + 1];
  ibv_send_wr* bad = nullptr;
  EXPECT_EQ(ops_.post_send(q, &w[0], &bad), ENOMEM);
  EXPECT_EQ(bad, &w[4]);  // the first four were posted (and sent), the rest are the caller's
  EXPECT_EQ(wire_->sent.size(), 4u);
  w[4].next = nullptr;
  EXPECT_EQ(ops_.post_send(q, &w[4], &bad), ENOMEM);  // sent but not retired: still full
  auto wc = poll(c);
  ASSERT_EQ(wc.size(), 1u);
  EXPECT_EQ(wc[0].wr_id, 3u);
  EXPECT_EQ(ops_.post_send(q, &w[4], &bad), 0);  // all four slots retired by that one completion
  EXPECT_EQ(wire_->sent.size(), 5u);
}

TEST_F(SwDeviceTest, SgeOutsideARegisteredRegionIsALocalProtectionErrorThenFlushes) {
  ibv_cq* c = cq(16);
  ibv_qp* q = qp(c, c, 8, 4);
  to_rts(q);
  std::vector<uint8_t> buf(64), other(64), rbuf(128);
  ibv_mr* mr = reg(buf);
  ibv_mr* rmr = reg(rbuf);
  ibv_sge past_end = sge_of(buf.data() + 32, 33, mr);  // one byte beyond the region
  ibv_sge bad_key = sge_of(buf.data(), 64, mr);
  bad_key.lkey = mr->lkey + 1000;
  ibv_sge unreg = sge_of(other.data(), 64, mr);  // memory the MR does not cover
  ibv_sge ok = sge_of(buf.data(), 64, mr);
  ibv_sge rs = sge_of(rbuf.data(), 128, rmr);
  ibv_recv_wr r{.wr_id = 50, .next = nullptr, .sg_list = &rs, .num_sge = 1}, *rbad = nullptr;
  ASSERT_EQ(ops_.post_recv(q, &r, &rbad), 0);
  ibv_send_wr w1 = send_wr(1, &ok, 1), w2 = send_wr(2, &past_end, 1), w3 = send_wr(3, &ok, 1);
  w1.next = &w2;
  w2.next = &w3;
  ibv_send_wr* bad = nullptr;
  ASSERT_EQ(ops_.post_send(q, &w1, &bad), 0);
  auto wc = poll(c);
  // w1 unsignaled and fine: no completion. w2 in error: a completion although unsignaled. Then the
  // QP is in the error state and everything outstanding is flushed: w3 and the receive WR.
  ASSERT_EQ(wc.size(), 3u);
  EXPECT_EQ(wc[0].wr_id, 2u);
  EXPECT_EQ(wc[0].status, IBV_WC_LOC_PROT_ERR);
  EXPECT_EQ(wc[1].wr_id, 3u);
  EXPECT_EQ(wc[1].status, IBV_WC_WR_FLUSH_ERR);
  EXPECT_EQ(wc[2].wr_id, 50u);
  EXPECT_EQ(wc[2].status, IBV_WC_WR_FLUSH_ERR);
  EXPECT_EQ(q->state, IBV_QPS_ERR);
  EXPECT_EQ(wire_->sent.size(), 1u);
  // Back to work through RESET; the other two kinds of bad sge fail the same way.
  for (ibv_sge* s : {&bad_key, &unreg}) {
    ASSERT_EQ(to_state(q, IBV_QPS_RESET), 0);
    to_rts(q);
    ibv_send_wr w = send_wr(9, s, 1);
    ASSERT_EQ(ops_.post_send(q, &w, &bad), 0);
    wc = poll(c);
    ASSERT_EQ(wc.size(), 1u);
    EXPECT_EQ(wc[0].status, IBV_WC_LOC_PROT_ERR);
  }
  EXPECT_EQ(sw::sw_stats(kDev).tx_errors, 3u);
}

TEST_F(SwDeviceTest, InlineSendsNeedNoRegistrationAndAreCopiedAtPost) {
  ibv_cq* c = cq(16);
  ibv_qp* q = qp(c, c, 8, 1, 128);
  to_rts(q);
  std::vector<uint8_t> frame(100, 0xab), big(129, 0xcd);
  ibv_sge s{reinterpret_cast<uint64_t>(frame.data()), 100, 0};  // no lkey: inline
  ibv_send_wr w = send_wr(1, &s, 1, IBV_SEND_INLINE | IBV_SEND_SIGNALED), *bad = nullptr;
  sw::sw_hold(kDev, true);
  ASSERT_EQ(ops_.post_send(q, &w, &bad), 0);
  std::fill(frame.begin(), frame.end(), 0);  // the buffer is the caller's again on return
  sw::sw_hold(kDev, false);
  ASSERT_EQ(wire_->sent.size(), 1u);
  EXPECT_EQ(wire_->sent[0], std::vector<uint8_t>(100, 0xab));
  ibv_sge sb{reinterpret_cast<uint64_t>(big.data()), 129, 0};
  ibv_send_wr wb = send_wr(2, &sb, 1, IBV_SEND_INLINE);
  EXPECT_EQ(ops_.post_send(q, &wb, &bad), ENOMEM);  // beyond max_inline_data (mlx5)
  EXPECT_EQ(poll(c).size(), 1u);
  // Shorter than the 18 bytes mlx5 copies as the inline L2 header: refused at post.
  ibv_sge runt{reinterpret_cast<uint64_t>(frame.data()), 17, 0};
  ibv_send_wr wr = send_wr(3, &runt, 1, IBV_SEND_INLINE);
  EXPECT_EQ(ops_.post_send(q, &wr, &bad), EINVAL);
  EXPECT_EQ(bad, &wr);
}

TEST_F(SwDeviceTest, ReceiveThroughAFlowRuleElseTheKernel) {
  ibv_cq* sc = cq(16);
  ibv_cq* rc = cq(16);
  ibv_qp* q = qp(sc, rc, 4, 4);
  to_rts(q);
  std::vector<uint8_t> rbuf(2 * 2048);
  ibv_mr* mr = reg(rbuf);
  flow(q, flow_rule(IPPROTO_UDP, htonl(xmit::testing::kAddrB), htons(2000)));
  ibv_sge rs = sge_of(rbuf.data(), 2048, mr);
  ibv_recv_wr r{.wr_id = 5, .next = nullptr, .sg_list = &rs, .num_sge = 1}, *rbad = nullptr;
  ASSERT_EQ(ops_.post_recv(q, &r, &rbad), 0);
  auto mine = make_frame({.dport = 2000, .payload_len = 300});
  auto other_port = make_frame({.dport = 2001});
  auto tcp = make_frame({.protocol = 6, .dport = 2000});
  for (auto* f : {&other_port, &mine, &tcp}) wire_->inject(f->data(), uint32_t(f->size()));
  auto wc = poll(rc);
  ASSERT_EQ(wc.size(), 1u);
  EXPECT_EQ(wc[0].wr_id, 5u);
  EXPECT_EQ(wc[0].status, IBV_WC_SUCCESS);
  EXPECT_EQ(wc[0].opcode, IBV_WC_RECV);
  EXPECT_EQ(wc[0].byte_len, mine.size());
  EXPECT_TRUE(std::equal(mine.begin(), mine.end(), rbuf.begin()));
  ASSERT_EQ(wire_->kernel.size(), 2u);
  EXPECT_EQ(wire_->kernel[0], other_port);
  EXPECT_EQ(wire_->kernel[1], tcp);
  // No receive WR left: a matching frame is dropped (hardware counts out-of-buffer), not the kernel's.
  wire_->inject(mine.data(), uint32_t(mine.size()));
  EXPECT_TRUE(poll(rc).empty());
  EXPECT_EQ(sw::sw_stats(kDev).rx_no_wqe, 1u);
  EXPECT_EQ(sw::sw_stats(kDev).rx_to_kernel, 2u);
}

TEST_F(SwDeviceTest, LowestPriorityValueWinsAndRemovedRulesStopMatching) {
  ibv_cq* c = cq(64);
  ibv_qp* wide = qp(c, c, 4, 8);
  ibv_qp* narrow = qp(c, c, 4, 8);
  to_rts(wide);
  to_rts(narrow);
  std::vector<uint8_t> rbuf(16 * 2048);
  ibv_mr* mr = reg(rbuf);
  for (int i = 0; i < 16; ++i) {
    ibv_sge rs = sge_of(rbuf.data() + i * 2048, 2048, mr);
    ibv_recv_wr r{.wr_id = uint64_t(i), .next = nullptr, .sg_list = &rs, .num_sge = 1}, *rbad = nullptr;
    ASSERT_EQ(ops_.post_recv(i < 8 ? wide : narrow, &r, &rbad), 0);
  }
  ibv_flow* fw = flow(wide, flow_rule(IPPROTO_UDP, 0, htons(2000), 1));  // any address, priority 1
  ibv_flow* fn = flow(narrow, flow_rule(IPPROTO_UDP, htonl(xmit::testing::kAddrB), htons(2000), 0));
  auto f = make_frame({.dport = 2000});
  wire_->inject(f.data(), uint32_t(f.size()));
  auto wc = poll(c);
  ASSERT_EQ(wc.size(), 1u);
  EXPECT_EQ(wc[0].qp_num, narrow->qp_num);
  drop_flow(fn);
  wire_->inject(f.data(), uint32_t(f.size()));
  wc = poll(c);
  ASSERT_EQ(wc.size(), 1u);
  EXPECT_EQ(wc[0].qp_num, wide->qp_num);
  drop_flow(fw);
  wire_->inject(f.data(), uint32_t(f.size()));
  EXPECT_TRUE(poll(c).empty());
  EXPECT_EQ(wire_->kernel.size(), 1u);
}

TEST_F(SwDeviceTest, ReceiveBufferMustBeWritableAndLargeEnough) {
  ibv_cq* c = cq(16);
  ibv_qp* q = qp(c, c, 4, 4);
  to_rts(q);
  std::vector<uint8_t> ro(2048), small(64);
  ibv_mr* ro_mr = reg(ro, 0);  // no IBV_ACCESS_LOCAL_WRITE
  ibv_mr* small_mr = reg(small);
  flow(q, flow_rule(IPPROTO_UDP, 0, htons(2000)));
  auto f = make_frame({.dport = 2000});
  ibv_sge rs = sge_of(ro.data(), 2048, ro_mr);
  ibv_recv_wr r{.wr_id = 1, .next = nullptr, .sg_list = &rs, .num_sge = 1}, *rbad = nullptr;
  ASSERT_EQ(ops_.post_recv(q, &r, &rbad), 0);
  wire_->inject(f.data(), uint32_t(f.size()));
  auto wc = poll(c);
  ASSERT_EQ(wc.size(), 1u);
  EXPECT_EQ(wc[0].status, IBV_WC_LOC_PROT_ERR);
  ASSERT_EQ(to_state(q, IBV_QPS_RESET), 0);
  to_rts(q);
  ibv_sge ss = sge_of(small.data(), 64, small_mr);
  ibv_recv_wr r2{.wr_id = 2, .next = nullptr, .sg_list = &ss, .num_sge = 1};
  ASSERT_EQ(ops_.post_recv(q, &r2, &rbad), 0);
  wire_->inject(f.data(), uint32_t(f.size()));
  wc = poll(c);
  ASSERT_EQ(wc.size(), 1u);
  EXPECT_EQ(wc[0].status, IBV_WC_LOC_LEN_ERR);
}

TEST_F(SwDeviceTest, CompletionQueueOverrunIsReported) {
  ibv_cq* c = cq(1);  // one entry
  ASSERT_EQ(c->cqe, 1);
  ibv_qp* q = qp(c, c, 4, 1);
  to_rts(q);
  std::vector<uint8_t> buf(64);
  ibv_mr* mr = reg(buf);
  ibv_sge s = sge_of(buf.data(), 64, mr);
  ibv_send_wr w1 = send_wr(1, &s, 1, IBV_SEND_SIGNALED), w2 = send_wr(2, &s, 1, IBV_SEND_SIGNALED);
  w1.next = &w2;
  ibv_send_wr* bad = nullptr;
  ASSERT_EQ(ops_.post_send(q, &w1, &bad), 0);
  auto wc = poll(c);
  ASSERT_EQ(wc.size(), 1u);
  EXPECT_EQ(wc[0].wr_id, 1u);
  ibv_wc more[4];
  errno = 0;
  EXPECT_LT(ops_.poll_cq(c, 4, more), 0);
  EXPECT_EQ(errno, EOVERFLOW);
  EXPECT_EQ(sw::sw_stats(kDev).cq_overruns, 1u);
}

TEST_F(SwDeviceTest, DeregisteringMemoryUnderAPostedSendIsCountedAndTheSendFails) {
  ibv_cq* c = cq(16);
  ibv_qp* q = qp(c, c, 4, 1);
  to_rts(q);
  std::vector<uint8_t> buf(64);
  ibv_mr* mr = ops_.reg_mr(pd_, buf.data(), buf.size(), IBV_ACCESS_LOCAL_WRITE);
  ASSERT_NE(mr, nullptr);
  ibv_sge s = sge_of(buf.data(), 64, mr);
  ibv_send_wr w = send_wr(1, &s, 1, IBV_SEND_SIGNALED), *bad = nullptr;
  sw::sw_hold(kDev, true);
  ASSERT_EQ(ops_.post_send(q, &w, &bad), 0);
  EXPECT_EQ(ops_.dereg_mr(mr), 0);  // allowed, as on hardware: the poster must not do it
  EXPECT_EQ(sw::sw_stats(kDev).dereg_in_flight, 1u);
  sw::sw_hold(kDev, false);
  auto wc = poll(c);
  ASSERT_EQ(wc.size(), 1u);
  EXPECT_EQ(wc[0].status, IBV_WC_LOC_PROT_ERR);
  EXPECT_TRUE(wire_->sent.empty());
}

TEST_F(SwDeviceTest, ObjectsInUseCannotBeFreed) {
  ibv_cq* c = cq(16);
  ibv_qp* q = qp(c, c, 4, 1);
  ibv_flow* f = flow(q, flow_rule(IPPROTO_TCP, 0, htons(80)));
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(ops_.destroy_qp(q), EBUSY);  // a flow rule holds it
  EXPECT_EQ(ops_.destroy_cq(c), EBUSY);  // a QP holds it
  EXPECT_EQ(ops_.dealloc_pd(pd_), EBUSY);
  std::vector<uint8_t> buf(8);
  errno = 0;
  EXPECT_EQ(ops_.reg_mr(pd_, buf.data(), 8, IBV_ACCESS_REMOTE_WRITE), nullptr);  // needs LOCAL_WRITE
  EXPECT_EQ(errno, EINVAL);
}

TEST_F(SwDeviceTest, IpCsumIsRefusedWithoutTheCapability) {
  ibv_device_attr_ex attr{};
  ASSERT_EQ(ops_.query_device_ex(ctx_, nullptr, &attr), 0);
  EXPECT_EQ(attr.raw_packet_caps & IBV_RAW_PACKET_CAP_IP_CSUM, 0u);
  ibv_cq* c = cq(16);
  ibv_qp* q = qp(c, c, 4, 1);
  to_rts(q);
  std::vector<uint8_t> buf(64);
  ibv_mr* mr = reg(buf);
  ibv_sge s = sge_of(buf.data(), 64, mr);
  ibv_send_wr w = send_wr(1, &s, 1, IBV_SEND_IP_CSUM), *bad = nullptr;
  EXPECT_EQ(ops_.post_send(q, &w, &bad), EINVAL);  // mlx5 without MLX5_CSUM_SUPPORT_RAW_OVER_ETH
}

// verbs.h's own inline ibv_post_send()/ibv_poll_cq() reach the device through the context ops,
// like a provider's.
TEST_F(SwDeviceTest, VerbsInlineFunctionsReachTheDevice) {
  ibv_cq* c = cq(16);
  ibv_qp* q = qp(c, c, 4, 1);
  to_rts(q);
  std::vector<uint8_t> buf(64);
  ibv_mr* mr = reg(buf);
  ibv_sge s = sge_of(buf.data(), 64, mr);
  ibv_send_wr w = send_wr(4, &s, 1, IBV_SEND_SIGNALED), *bad = nullptr;
  ASSERT_EQ(ibv_post_send(q, &w, &bad), 0);
  ibv_wc wc;
  ASSERT_EQ(ibv_poll_cq(c, 1, &wc), 1);
  EXPECT_EQ(wc.wr_id, 4u);
}

// ibv_req_notify_cq(3) / ibv_get_cq_event(3): one event per arming, on the channel's fd.
TEST_F(SwDeviceTest, CompletionChannelFiresOncePerArming) {
  ibv_comp_channel* ch = ops_.create_comp_channel(ctx_);
  ASSERT_NE(ch, nullptr);
  channels_.push_back(ch);
  int tag = 0;
  ibv_cq* c = ops_.create_cq(ctx_, 16, &tag, ch, 0);
  ASSERT_NE(c, nullptr);
  cqs_.push_back(c);
  EXPECT_EQ(ops_.destroy_comp_channel(ch), EBUSY);  // a CQ uses it
  ibv_qp* q = qp(c, c, 4, 4);
  to_rts(q);
  flow(q, flow_rule(IPPROTO_UDP, 0, htons(2000)));
  std::vector<uint8_t> rbuf(2 * 2048);
  ibv_mr* mr = reg(rbuf);
  for (int i = 0; i < 2; ++i) {
    ibv_sge rs = sge_of(rbuf.data() + i * 2048, 2048, mr);
    ibv_recv_wr r{.wr_id = uint64_t(i), .next = nullptr, .sg_list = &rs, .num_sge = 1}, *rbad = nullptr;
    ASSERT_EQ(ops_.post_recv(q, &r, &rbad), 0);
  }
  ibv_cq* ev_cq = nullptr;
  void* ev_ctx = nullptr;
  EXPECT_FALSE(readable(ch->fd));
  errno = 0;
  EXPECT_EQ(ops_.get_cq_event(ch, &ev_cq, &ev_ctx), -1);
  EXPECT_EQ(errno, EAGAIN);
  ASSERT_EQ(ops_.req_notify_cq(c, 0), 0);
  auto f = make_frame({.dport = 2000});
  wire_->inject(f.data(), uint32_t(f.size()));
  EXPECT_TRUE(readable(ch->fd));  // a frame waits on the link
  ASSERT_EQ(ops_.get_cq_event(ch, &ev_cq, &ev_ctx), 0);
  EXPECT_EQ(ev_cq, c);
  EXPECT_EQ(ev_ctx, &tag);
  ops_.ack_cq_events(c, 1);
  EXPECT_EQ(c->comp_events_completed, 1u);
  EXPECT_FALSE(readable(ch->fd));
  EXPECT_EQ(poll(c).size(), 1u);
  // Not re-armed: the next completion makes no event.
  wire_->inject(f.data(), uint32_t(f.size()));
  EXPECT_TRUE(readable(ch->fd));
  EXPECT_EQ(ops_.get_cq_event(ch, &ev_cq, &ev_ctx), -1);
  EXPECT_FALSE(readable(ch->fd));
  EXPECT_EQ(poll(c).size(), 1u);
}

class SwCsumDeviceTest : public SwDeviceTest {
  void SetUp() override {
    auto c = config();
    c.ip_csum = true;
    open_device(c);
  }
};

TEST_F(SwCsumDeviceTest, IpCsumFillsIpv4AndL4Checksums) {
  ibv_device_attr_ex attr{};
  ASSERT_EQ(ops_.query_device_ex(ctx_, nullptr, &attr), 0);
  EXPECT_NE(attr.raw_packet_caps & IBV_RAW_PACKET_CAP_IP_CSUM, 0u);
  ibv_cq* c = cq(16);
  ibv_qp* q = qp(c, c, 4, 1);
  to_rts(q);
  for (uint8_t proto : {uint8_t{6}, uint8_t{17}}) {
    auto f = make_frame({.protocol = proto, .payload_len = 333, .partial_csum = true, .ip_csum_zero = true});
    ibv_mr* mr = reg(f);
    ibv_sge s = sge_of(f.data(), uint32_t(f.size()), mr);
    ibv_send_wr w = send_wr(1, &s, 1, IBV_SEND_IP_CSUM), *bad = nullptr;
    ASSERT_EQ(ops_.post_send(q, &w, &bad), 0);
    ASSERT_FALSE(wire_->sent.empty());
    EXPECT_TRUE(xmit::testing::ipv4_csum_ok(wire_->sent.back()));
    EXPECT_TRUE(xmit::testing::l4_csum_ok(wire_->sent.back()));
  }
}

class SwTsoDeviceTest : public SwDeviceTest {
  void SetUp() override {
    auto c = config();
    c.max_tso = 65536;
    open_device(c);
  }

 protected:
  ibv_qp* tso_qp(ibv_cq* c, uint16_t max_tso_header) {
    ibv_qp_init_attr_ex a{};
    a.send_cq = c;
    a.recv_cq = c;
    a.qp_type = IBV_QPT_RAW_PACKET;
    a.cap = {.max_send_wr = 8, .max_recv_wr = 1, .max_send_sge = 4, .max_recv_sge = 1};
    a.comp_mask = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_MAX_TSO_HEADER;
    a.pd = pd_;
    a.max_tso_header = max_tso_header;
    ibv_qp* q = ops_.create_qp_ex(ctx_, &a);
    EXPECT_NE(q, nullptr);
    if (q != nullptr) qps_.push_back(q);
    return q;
  }
};

TEST_F(SwDeviceTest, TsoNeedsTheCapability) {
  ibv_cq* c = cq(16);
  ibv_qp_init_attr_ex a{};
  a.send_cq = c;
  a.recv_cq = c;
  a.qp_type = IBV_QPT_RAW_PACKET;
  a.cap = {.max_send_wr = 8, .max_recv_wr = 1, .max_send_sge = 1, .max_recv_sge = 1};
  a.comp_mask = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_MAX_TSO_HEADER;
  a.pd = pd_;
  a.max_tso_header = 128;
  errno = 0;
  EXPECT_EQ(ops_.create_qp_ex(ctx_, &a), nullptr);  // tso_caps.max_tso is 0 on this device
  EXPECT_EQ(errno, EINVAL);
}

// IBV_WR_TSO: the header template and a payload in several sges become mss-sized TCP segments
// on the wire, each with its own length, id, sequence number, flags and checksums.
TEST_F(SwTsoDeviceTest, TsoSegmentsTheSendOnTheWire) {
  ibv_device_attr_ex attr{};
  ASSERT_EQ(ops_.query_device_ex(ctx_, nullptr, &attr), 0);
  EXPECT_EQ(attr.tso_caps.max_tso, 65536u);
  EXPECT_TRUE(attr.tso_caps.supported_qpts & (1u << IBV_QPT_RAW_PACKET));
  ibv_cq* c = cq(16);
  ibv_qp* plain = qp(c, c, 4, 1);  // made without max_tso_header
  ibv_qp* q = tso_qp(c, 128);
  to_rts(plain);
  to_rts(q);
  // CWR|FIN|PSH|ACK: CWR stays on the first segment only, FIN and PSH on the last only.
  auto f = make_frame({.protocol = 6, .payload_len = 3000, .seq = 5000, .tcp_flags = 0x99});
  ibv_mr* mr = reg(f);
  const uint16_t hdr = 54;
  // The payload in three pieces that do not fall on segment boundaries.
  ibv_sge payload[3] = {sge_of(f.data() + hdr, 700, mr), sge_of(f.data() + hdr + 700, 1500, mr),
                        sge_of(f.data() + hdr + 2200, 800, mr)};
  ibv_send_wr w = send_wr(1, payload, 3, IBV_SEND_SIGNALED), *bad = nullptr;
  w.opcode = IBV_WR_TSO;
  w.tso.hdr = f.data();
  w.tso.hdr_sz = hdr;
  w.tso.mss = 1000;
  EXPECT_EQ(ops_.post_send(plain, &w, &bad), EINVAL);  // no max_tso_header
  w.tso.hdr_sz = 17;
  EXPECT_EQ(ops_.post_send(q, &w, &bad), EINVAL);  // shorter than the inline L2 header
  w.tso.hdr_sz = 129;
  EXPECT_EQ(ops_.post_send(q, &w, &bad), EINVAL);  // longer than max_tso_header
  EXPECT_TRUE(wire_->sent.empty());
  w.tso.hdr_sz = hdr;
  const std::vector<uint8_t> orig = f;
  sw::sw_hold(kDev, true);
  ASSERT_EQ(ops_.post_send(q, &w, &bad), 0);
  f[0] ^= 0xff;  // the header was copied into the WQE at post: this changes nothing sent
  sw::sw_hold(kDev, false);
  auto wc = poll(c);
  ASSERT_EQ(wc.size(), 1u);
  EXPECT_EQ(wc[0].status, IBV_WC_SUCCESS);
  ASSERT_EQ(wire_->sent.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const auto& s = wire_->sent[i];
    ASSERT_EQ(s.size(), size_t(hdr) + 1000);
    EXPECT_EQ(xmit::testing::be16_at(s, 16), 20 + 20 + 1000);           // IP total length
    EXPECT_EQ(xmit::testing::be16_at(s, 18), 0x1234 + i);              // IP id
    EXPECT_EQ(xmit::testing::be32_at(s, 38), 5000 + 1000 * i);          // TCP sequence
    EXPECT_EQ(s[47], i == 0 ? 0x90 : i == 2 ? 0x19 : 0x10);             // CWR first, FIN|PSH last
    EXPECT_TRUE(xmit::testing::ipv4_csum_ok(s));
    EXPECT_TRUE(xmit::testing::l4_csum_ok(s));
    EXPECT_TRUE(std::equal(s.begin() + hdr, s.end(), orig.begin() + hdr + 1000 * long(i)));
    EXPECT_TRUE(std::equal(s.begin(), s.begin() + 14, orig.begin()));  // the template's Ethernet header
  }
  EXPECT_EQ(sw::sw_stats(kDev).tx_frames, 3u);
}

// The last segment carries what is left; a payload of exactly k * mss gives k full segments; an
// inline TSO send (mlx5 allows IBV_SEND_INLINE with IBV_WR_TSO) is cut like any other; more
// segments than one batch to the carrier holds (kTsoBatchFrames) all go, in order.
TEST_F(SwTsoDeviceTest, TsoSegmentCountsAndInlinePayload) {
  ibv_cq* c = cq(16);
  ibv_qp_init_attr_ex a{};
  a.send_cq = c;
  a.recv_cq = c;
  a.qp_type = IBV_QPT_RAW_PACKET;
  a.cap = {.max_send_wr = 8, .max_recv_wr = 1, .max_send_sge = 4, .max_recv_sge = 1, .max_inline_data = 256};
  a.comp_mask = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_MAX_TSO_HEADER;
  a.pd = pd_;
  a.max_tso_header = 128;
  ibv_qp* q = ops_.create_qp_ex(ctx_, &a);
  ASSERT_NE(q, nullptr);
  qps_.push_back(q);
  to_rts(q);
  struct Case {
    uint32_t payload;
    uint16_t mss;
    bool inl;
    std::vector<uint32_t> want;  // payload bytes of each segment
  };
  std::vector<uint32_t> many(140, 64);
  many.push_back(40);  // 9000 = 140 * 64 + 40: 141 segments, three batches of at most 64
  for (const Case& k : {Case{2896, 1448, false, {1448, 1448}}, Case{2897, 1448, false, {1448, 1448, 1}},
                        Case{1000, 1448, false, {1000}}, Case{200, 64, true, {64, 64, 64, 8}},
                        Case{9000, 64, false, many}}) {
    SCOPED_TRACE(k.payload);
    wire_->sent.clear();
    auto f = make_frame({.protocol = 6, .payload_len = k.payload, .payload_seed = 7, .seq = 1});
    ibv_mr* mr = reg(f);
    ibv_sge s = sge_of(f.data() + 54, k.payload, mr);
    ibv_send_wr w = send_wr(1, &s, 1, IBV_SEND_SIGNALED | (k.inl ? IBV_SEND_INLINE : 0)), *bad = nullptr;
    w.opcode = IBV_WR_TSO;
    w.tso.hdr = f.data();
    w.tso.hdr_sz = 54;
    w.tso.mss = k.mss;
    ASSERT_EQ(ops_.post_send(q, &w, &bad), 0);
    if (k.inl) std::fill(f.begin() + 54, f.end(), 0);  // inline data was copied at post
    auto wc = poll(c);
    ASSERT_EQ(wc.size(), 1u);
    EXPECT_EQ(wc[0].status, IBV_WC_SUCCESS);
    const std::vector<uint32_t>& want = k.want;
    ASSERT_EQ(wire_->sent.size(), want.size());
    uint32_t off = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      const auto& seg = wire_->sent[i];
      ASSERT_EQ(seg.size(), 54 + want[i]);
      EXPECT_EQ(xmit::testing::be32_at(seg, 38), 1 + off);
      for (uint32_t b = 0; b < want[i]; ++b) ASSERT_EQ(seg[54 + b], uint8_t(7 + off + b)) << b;
      EXPECT_TRUE(xmit::testing::l4_csum_ok(seg));
      off += want[i];
    }
  }
}

// A TSO WR mlx5 posts but the device cannot carry out completes in error (and the QP goes to the
// error state, as after any error completion): an mss of 0 or a header that is not exactly
// hdr_sz of Ethernet/IPv4/TCP (IBV_WC_LOC_QP_OP_ERR), segments longer than the port's MTU
// (IBV_WC_LOC_LEN_ERR), a payload sge outside its MR (IBV_WC_LOC_PROT_ERR). Nothing reaches the wire.
TEST_F(SwTsoDeviceTest, TsoWorkRequestsTheDeviceCannotCutCompleteInError) {
  ibv_cq* c = cq(16);
  ibv_qp* q = tso_qp(c, 128);
  auto tcp = make_frame({.protocol = 6, .payload_len = 3000});
  auto udp = make_frame({.protocol = 17, .payload_len = 3000});
  ibv_mr* mr = reg(tcp);
  ibv_mr* umr = reg(udp);
  struct Case {
    const char* what;
    const uint8_t* hdr;
    uint16_t hdr_sz, mss;
    ibv_sge sge;
    ibv_wc_status want;
  };
  const Case cases[] = {
      {"mss 0", tcp.data(), 54, 0, sge_of(tcp.data() + 54, 3000, mr), IBV_WC_LOC_QP_OP_ERR},
      {"hdr_sz past the TCP header", tcp.data(), 58, 1000, sge_of(tcp.data() + 58, 2996, mr), IBV_WC_LOC_QP_OP_ERR},
      {"hdr_sz short of the TCP header", tcp.data(), 50, 1000, sge_of(tcp.data() + 50, 3004, mr), IBV_WC_LOC_QP_OP_ERR},
      {"UDP", udp.data(), 42, 1000, sge_of(udp.data() + 42, 3000, umr), IBV_WC_LOC_QP_OP_ERR},
      {"segments above the MTU", tcp.data(), 54, 1461, sge_of(tcp.data() + 54, 3000, mr), IBV_WC_LOC_LEN_ERR},
      {"sge outside the MR", tcp.data(), 54, 1000, ibv_sge{reinterpret_cast<uint64_t>(tcp.data() + 54), 3001, mr->lkey},
       IBV_WC_LOC_PROT_ERR},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.what);
    ASSERT_EQ(to_state(q, IBV_QPS_RESET), 0);
    to_rts(q);
    ibv_sge s = k.sge;
    ibv_send_wr w = send_wr(7, &s, 1), *bad = nullptr;  // unsignaled: an error completes anyway
    w.opcode = IBV_WR_TSO;
    w.tso.hdr = const_cast<uint8_t*>(k.hdr);
    w.tso.hdr_sz = k.hdr_sz;
    w.tso.mss = k.mss;
    ASSERT_EQ(ops_.post_send(q, &w, &bad), 0);  // mlx5 looks only at hdr_sz's bounds at post
    auto wc = poll(c);
    ASSERT_EQ(wc.size(), 1u);
    EXPECT_EQ(wc[0].wr_id, 7u);
    EXPECT_EQ(wc[0].status, k.want);
    EXPECT_EQ(q->state, IBV_QPS_ERR);
    EXPECT_TRUE(wire_->sent.empty());
  }
  EXPECT_EQ(sw::sw_stats(kDev).tx_errors, 6u);
}

TEST(SwDeviceOpen, PacketCarrierOnAMissingInterfaceFailsAtCreateQp) {
  sw::SwDeviceConfig cfg;
  cfg.name = "xmit_sw_missing";
  cfg.ifname = "nosuchif0";
  cfg.carrier = sw::SwCarrier::kPacket;
  ASSERT_EQ(sw::sw_add_device(cfg), 0);
  EXPECT_EQ(sw::sw_add_device(cfg), -EEXIST);
  const IbvOps& ops = ibv_sw_ops();
  int n = 0;
  ibv_device** list = ops.get_device_list(&n);
  ASSERT_EQ(n, 1);
  ibv_context* ctx = ops.open_device(list[0]);
  ops.free_device_list(list);
  ASSERT_NE(ctx, nullptr);
  ibv_pd* pd = ops.alloc_pd(ctx);
  ibv_cq* c = ops.create_cq(ctx, 4, nullptr, nullptr, 0);
  ibv_qp_init_attr a{};
  a.send_cq = c;
  a.recv_cq = c;
  a.qp_type = IBV_QPT_RAW_PACKET;
  a.cap = {.max_send_wr = 1, .max_recv_wr = 1, .max_send_sge = 1, .max_recv_sge = 1};
  errno = 0;
  EXPECT_EQ(ops.create_qp(pd, &a), nullptr);
  EXPECT_EQ(errno, ENODEV);
  EXPECT_EQ(ops.destroy_cq(c), 0);
  EXPECT_EQ(ops.dealloc_pd(pd), 0);
  EXPECT_EQ(ops.close_device(ctx), 0);
  EXPECT_EQ(sw::sw_remove_all_devices(), 0);
}

}  // namespace
}  // namespace xmit::ibv::testing
