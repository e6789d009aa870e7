// verbs/ibv/sw/sw_divert.bpf.c — for the software verbs device on AF_PACKET: a tc ingress (tcx)
// program that drops frames of flows a flow rule took, so that, as with a NIC's steering, the
// kernel's IP stack never sees them. AF_PACKET taps run before tc ingress
// (__netif_receive_skb_core(), net/core/dev.c), so the device's socket still receives them.
// A frame the backend hands back to the kernel (verbs/ibv/rx_inject.h: its mark) passes, unmarked.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "verbs/ibv/rx_inject_mark.h"

// Must match xmit::ibv::sw::DivertKey (sw_divert.h). Network byte order; zero remote fields:
// any remote; zero local_addr: any local address.
struct divert_key {
  __u32 local_addr;
  __u32 remote_addr;
  __u16 local_port;
  __u16 remote_port;
  __u8 protocol;
  __u8 pad[3];
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, struct divert_key);
  __type(value, __u8);
} xmit_divert SEC(".maps");

#define IP_OFFSET 0x1fff

SEC("tc")
int xmit_divert_prog(struct __sk_buff* skb) {
  if (skb->mark == XMIT_RX_INJECT_MARK) {  // as rx_inject.bpf.c's ingress program, whichever runs first
    skb->mark = 0;
    return TC_ACT_OK;
  }
  void* data = (void*)(long)skb->data;
  void* data_end = (void*)(long)skb->data_end;
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) return TC_ACT_OK;
  struct iphdr* iph = (void*)(eth + 1);
  if ((void*)(iph + 1) > data_end || iph->version != 4 || iph->ihl < 5) return TC_ACT_OK;
  // A later fragment carries no ports: a NIC's rule cannot match it, the kernel gets it. A first
  // fragment (MF, offset 0) carries them and is taken like any frame of the flow; the stack hands
  // it back onto the receive path (rx_inject.h), marked, and it passes above.
  if (iph->frag_off & bpf_htons(IP_OFFSET)) return TC_ACT_OK;
  if (iph->protocol != IPPROTO_UDP && iph->protocol != IPPROTO_TCP) return TC_ACT_OK;
  __u16* ports = (void*)iph + iph->ihl * 4;
  if ((void*)(ports + 2) > data_end) return TC_ACT_OK;
  struct divert_key key = {};
  key.protocol = iph->protocol;
  key.local_addr = iph->daddr;
  key.local_port = ports[1];
  key.remote_addr = iph->saddr;
  key.remote_port = ports[0];
  if (bpf_map_lookup_elem(&xmit_divert, &key)) return TC_ACT_SHOT;
  key.remote_addr = 0;
  key.remote_port = 0;
  if (bpf_map_lookup_elem(&xmit_divert, &key)) return TC_ACT_SHOT;
  key.local_addr = 0;
  if (bpf_map_lookup_elem(&xmit_divert, &key)) return TC_ACT_SHOT;
  return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
