// stack/dev/link_query.cc — see link_query.h.
#include "stack/dev/link_query.h"

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace xmit {

int query_link(const std::string& ifname, uint32_t* mtu, uint8_t mac[6]) {
  if (ifname.size() >= IFNAMSIZ) return -ENODEV;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  ifreq ifr{};
  memcpy(ifr.ifr_name, ifname.data(), ifname.size());
  int err = 0;
  if (ioctl(s, SIOCGIFMTU, &ifr) < 0) {
    err = -errno;
  } else {
    *mtu = uint32_t(ifr.ifr_mtu);
    if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0) err = -errno;
    else memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  }
  close(s);
  return err;
}

int query_rx_queues(const std::string& ifname, uint32_t* queues) {
  if (ifname.size() >= IFNAMSIZ) return -ENODEV;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  ethtool_channels ch{};
  ch.cmd = ETHTOOL_GCHANNELS;
  ifreq ifr{};
  memcpy(ifr.ifr_name, ifname.data(), ifname.size());
  ifr.ifr_data = reinterpret_cast<char*>(&ch);
  int err = 0;
  *queues = 1;
  if (ioctl(s, SIOCETHTOOL, &ifr) == 0) {
    if (ch.rx_count + ch.combined_count > 0) *queues = ch.rx_count + ch.combined_count;
  } else if (errno != EOPNOTSUPP) {
    err = -errno;
  }
  close(s);
  return err;
}

}  // namespace xmit
