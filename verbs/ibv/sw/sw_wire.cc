// verbs/ibv/sw/sw_wire.cc — the software device's carriers: an AF_PACKET socket on the port's
// network interface (packet(7)), and the IBV_SEND_IP_CSUM checksums a NIC fills on the way out.
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "stack/base/checksum.h"
#include "verbs/ibv/rx_inject_mark.h"
#include "verbs/ibv/sw/sw_objects.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

namespace xmit::ibv::sw {

int sw_packet_open(const std::string& ifname, int* ifindex, uint32_t* mtu) {
  if (ifname.empty() || ifname.size() >= IFNAMSIZ) return -ENODEV;
  int idx = int(if_nametoindex(ifname.c_str()));
  if (idx == 0) return -ENODEV;
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd < 0) return -errno;
  // Our own transmissions are not receptions (packet(7): PACKET_IGNORE_OUTGOING, Linux 4.20).
  int one = 1;
  (void)setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
  // A frame the backend hands back to the kernel (rx_inject.h) crosses the interface's receive
  // path, marked, and this tap before tc ingress: not a reception of the device's (its rule would
  // take it again).
  sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, uint32_t(SKF_AD_OFF + SKF_AD_MARK)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, XMIT_RX_INJECT_MARK, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0),
      BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),
  };
  sock_fprog prog{.len = sizeof code / sizeof code[0], .filter = code};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = idx;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) < 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  ifreq ifr{};
  memcpy(ifr.ifr_name, ifname.data(), ifname.size());
  if (ioctl(fd, SIOCGIFMTU, &ifr) == 0) *mtu = uint32_t(ifr.ifr_mtu);
  *ifindex = idx;
  return fd;
}

int sw_packet_send(int fd, int ifindex, const uint8_t* frame, uint32_t len) {
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_ifindex = ifindex;
  sll.sll_halen = 6;
  memcpy(sll.sll_addr, frame, 6);
  ssize_t n = sendto(fd, frame, len, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&sll), sizeof sll);
  return n < 0 ? -errno : 0;
}

int sw_packet_send_batch(int fd, int ifindex, const iovec* frames, uint32_t n) {
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_ifindex = ifindex;
  sll.sll_halen = 6;
  mmsghdr msgs[kTsoBatchFrames];
  if (n > kTsoBatchFrames) n = kTsoBatchFrames;
  for (uint32_t i = 0; i < n; ++i) {
    msgs[i] = mmsghdr{};
    msgs[i].msg_hdr.msg_name = &sll;  // SOCK_RAW: the frame carries its own header; the index counts
    msgs[i].msg_hdr.msg_namelen = sizeof sll;
    msgs[i].msg_hdr.msg_iov = const_cast<iovec*>(&frames[i]);
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int sent = sendmmsg(fd, msgs, n, MSG_DONTWAIT);
  return sent < 0 ? -errno : sent;
}

int sw_packet_recv(int fd, uint8_t* buf, uint32_t cap) {
  for (;;) {
    sockaddr_ll from{};
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(fd, buf, cap, MSG_DONTWAIT | MSG_TRUNC, reinterpret_cast<sockaddr*>(&from), &fl);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    if (from.sll_pkttype == PACKET_OUTGOING) continue;  // kernels without PACKET_IGNORE_OUTGOING
    if (uint32_t(n) > cap) continue;                     // larger than any receive buffer: dropped
    return int(n);
  }
}

void sw_fill_csums(uint8_t* f, uint32_t len) {
  constexpr uint32_t kEth = 14;
  if (len < kEth + 20 || load_be16(f + 12) != 0x0800) return;
  uint8_t* ip = f + kEth;
  const uint32_t ihl = (ip[0] & 0xfu) * 4;
  if ((ip[0] >> 4) != 4 || ihl < 20 || kEth + ihl > len) return;
  store_raw16(ip + 10, 0);
  store_raw16(ip + 10, ip_fast_csum(ip, ihl / 4));
  const uint32_t tot = load_be16(ip + 2);
  if (tot < ihl || kEth + tot > len || (load_be16(ip + 6) & 0x3fff) != 0) return;  // fragment
  const uint8_t proto = ip[9];
  const uint32_t l4len = tot - ihl;
  uint8_t* l4 = ip + ihl;
  uint32_t check_off;
  if (proto == 6 && l4len >= 20) check_off = 16;
  else if (proto == 17 && l4len >= 8) check_off = 6;
  else return;
  store_raw16(l4 + check_off, 0);
  sum16 c = csum_tcpudp_magic(load_raw32(ip + 12), load_raw32(ip + 16), l4len, proto, csum_partial(l4, l4len, 0));
  if (proto == 17) c = udp_csum_mangle0(c);
  store_raw16(l4 + check_off, c);
}

}  // namespace xmit::ibv::sw
