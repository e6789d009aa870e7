// verbs/ibv/rx_inject.bpf.c — puts a frame the backend sends with the inject mark onto the
// receive path of the interface it was sent on, as if the NIC had received it (rx_inject.h).
// Egress: a frame carrying XMIT_RX_INJECT_MARK (its AF_PACKET socket's SO_MARK) is redirected to
// the same device's ingress (bpf_redirect(BPF_F_INGRESS): __bpf_rx_skb(), skb->dev and skb_iif
// the interface's, the mark kept within the namespace). Ingress: the mark is cleared before the
// kernel's IP stack sees the frame (fib rules and netfilter see the original's mark, 0).
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_helpers.h>

#include "verbs/ibv/rx_inject_mark.h"

#define TCX_NEXT -1

SEC("tc")
int xmit_rx_inject_out(struct __sk_buff* skb) {
  if (skb->mark != XMIT_RX_INJECT_MARK) return TCX_NEXT;
  return bpf_redirect(skb->ifindex, BPF_F_INGRESS);
}

SEC("tc")
int xmit_rx_inject_in(struct __sk_buff* skb) {
  if (skb->mark != XMIT_RX_INJECT_MARK) return TCX_NEXT;
  skb->mark = 0;
  return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
