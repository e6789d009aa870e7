// verbs/ibv/sw/sw_internal.h — what the software device's files share: the casts from rdma-core
// structs to the device's objects, the lock, and the functions one file calls in another.
// Every function here runs with g_mu held.
#pragma once

#include <mutex>

#include "verbs/ibv/sw/sw_objects.h"

namespace xmit::ibv::sw {

extern std::mutex g_mu;

inline SwCtx* to_ctx(ibv_context* c) { return reinterpret_cast<SwCtx*>(c); }
inline SwPd* to_pd(ibv_pd* p) { return reinterpret_cast<SwPd*>(p); }
inline SwMr* to_mr(ibv_mr* m) { return reinterpret_cast<SwMr*>(m); }
inline SwCq* to_cq(ibv_cq* c) { return reinterpret_cast<SwCq*>(c); }
inline SwQp* to_qp(ibv_qp* q) { return reinterpret_cast<SwQp*>(q); }
inline SwFlow* to_flow(ibv_flow* f) { return reinterpret_cast<SwFlow*>(f); }

// sw_verbs.cc
bool cq_push(SwCq* q, const SwCqe& e);  // false: the CQ overran (the completion is lost)
void cq_clean(SwCq* q, SwQp* qp);
SwMr* find_mr(SwDev* d, SwPd* pd, uint32_t lkey);
int sw_poll_cq(ibv_cq* cq, int num_entries, ibv_wc* wc);  // takes g_mu

// sw_qp.cc (the ops take g_mu; the *_locked helpers expect it held)
ibv_qp* sw_create_qp(ibv_pd* pd, ibv_qp_init_attr* attr);
ibv_qp* sw_create_qp_ex(ibv_context* context, ibv_qp_init_attr_ex* attr);
int sw_modify_qp(ibv_qp* qp, ibv_qp_attr* attr, int attr_mask);
int sw_destroy_qp(ibv_qp* qp);
int sw_post_send(ibv_qp* qp, ibv_send_wr* wr, ibv_send_wr** bad_wr);
int sw_post_recv(ibv_qp* qp, ibv_recv_wr* wr, ibv_recv_wr** bad_wr);
ibv_flow* sw_create_flow(ibv_qp* qp, ibv_flow_attr* attr);
int sw_destroy_flow(ibv_flow* flow);
void destroy_qp_locked(SwQp* q);
void destroy_flow_locked(SwFlow* f);
void channel_watch_arrivals(SwChannel* ch, int fd);  // adds a carrier fd to the channel's set
void execute_sends(SwQp* q);        // runs posted sends unless the device is held
void pump_rx(SwDev* d, int budget);  // takes up to `budget` frames off the carrier
bool sq_references_lkey(SwDev* d, uint32_t lkey);

}  // namespace xmit::ibv::sw
