// verbs/xdp/xmit_xdp.bpf.c — the steering XDP program: frames of steered TCP/UDP flows go to the
// AF_XDP socket of their RX queue (a steered UDP datagram longer than an RX frame of the UMEM goes
// to the kernel, such a TCP segment is dropped); everything else (ARP, ICMP, fragments, IPv6, other
// ports) XDP_PASS. A SYN to a steered port that arrives on a queue no socket serves yet (or whose
// socket takes no new connections: xmit_no_accept) goes to the kernel's listening socket, and its 4-tuple is remembered (xmit_kernel_flows): the rest of that
// connection stays the kernel's after a socket takes the queue (a pre-fork worker starting), until
// a new SYN on the 4-tuple finds one.
// Kernel counterpart: an ethtool ntuple / ibv_create_flow rule, done in software.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

// Must match xmit::xdp::SteerKey (verbs/xdp/xdp_prog.h). Addresses and ports in network byte order;
// remote_addr == 0 && remote_port == 0 is the wildcard entry for a local port.
struct steer_key {
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
  __type(key, struct steer_key);
  __type(value, __u8);
} xmit_steer SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u32);
} xmit_xsks SEC(".maps");

// TCP connections the kernel accepted on a steered port (see above); least recently used first out.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct steer_key);
  __type(value, __u8);
} xmit_kernel_flows SEC(".maps");

// Per RX queue: 1 while the socket serving it takes no new connections (a pre-fork worker whose
// listeners closed: nginx's old workers finishing their requests after a reload). Its SYNs are
// then the kernel's, as on a queue no socket serves.
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u8);
} xmit_no_accept SEC(".maps");

// XdpNetdev::kRxFrameRoom: a 4096-byte chunk less XDP_PACKET_HEADROOM.
#define XSK_RX_FRAME_ROOM 3840
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

SEC("xdp")
int xmit_steer_prog(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* data_end = (void*)(long)ctx->data_end;

  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > data_end) return XDP_PASS;
  if (eth->h_proto != bpf_htons(ETH_P_IP)) return XDP_PASS;

  struct iphdr* iph = (void*)(eth + 1);
  if ((void*)(iph + 1) > data_end) return XDP_PASS;
  if (iph->version != 4 || iph->ihl < 5) return XDP_PASS;
  // Fragments carry no (or an incomplete) L4 header: the kernel reassembles them.
  if (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET)) return XDP_PASS;
  if (iph->protocol != IPPROTO_UDP && iph->protocol != IPPROTO_TCP) return XDP_PASS;

  // TCP and UDP both start with source port, destination port.
  __u16* ports = (void*)iph + iph->ihl * 4;
  if ((void*)(ports + 2) > data_end) return XDP_PASS;
  __u32 queue = ctx->rx_queue_index;
  int syn = 0;  // a TCP SYN without ACK: a new connection
  if (iph->protocol == IPPROTO_TCP) {
    __u8* tcp = (void*)ports;
    if ((void*)(tcp + 14) > data_end) return XDP_PASS;
    syn = (tcp[13] & 0x12) == 0x02;
  }

  struct steer_key key = {};
  key.protocol = iph->protocol;
  key.local_addr = iph->daddr;
  key.local_port = ports[1];
  key.remote_addr = iph->saddr;
  key.remote_port = ports[0];
  // A connection's own rule first: the per-queue and kernel-flow lookups below are for frames to a
  // listening port only (a kernel flow never has an exact rule: moved_to_kernel() removes it).
  if (!bpf_map_lookup_elem(&xmit_steer, &key)) {
    struct steer_key flow = key;
    key.remote_addr = 0;
    key.remote_port = 0;
    if (!bpf_map_lookup_elem(&xmit_steer, &key)) return XDP_PASS;
    if (key.protocol == IPPROTO_TCP) {
      const int has_xsk = bpf_map_lookup_elem(&xmit_xsks, &queue) != 0;
      if (bpf_map_lookup_elem(&xmit_kernel_flows, &flow)) {
        if (!syn || !has_xsk) return XDP_PASS;
        bpf_map_delete_elem(&xmit_kernel_flows, &flow);  // a new connection on the 4-tuple
      }
      // A listening port's connection the kernel is to accept: keep its segments there.
      __u8* no_accept = bpf_map_lookup_elem(&xmit_no_accept, &queue);
      if (syn && (!has_xsk || (no_accept && *no_accept))) {
        __u8 one = 1;
        bpf_map_update_elem(&xmit_kernel_flows, &flow, &one, BPF_ANY);
        return XDP_PASS;
      }
    }
  }
  // A frame no RX frame of the UMEM holds would be dropped at the socket. A UDP datagram the
  // kernel takes (the socket's shadow receives it); a TCP segment is dropped as the socket would
  // (the kernel has no such connection and would reset it; the peer keeps to the MSS xmit gave).
  if (data_end - data > XSK_RX_FRAME_ROOM) return key.protocol == IPPROTO_UDP ? XDP_PASS : XDP_DROP;
  // No socket bound to this queue yet: fall back to the kernel rather than drop.
  return bpf_redirect_map(&xmit_xsks, queue, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
