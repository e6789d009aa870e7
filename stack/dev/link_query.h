// stack/dev/link_query.h — what a raw queue needs to know of the Linux interface it sits on.
#pragma once

#include <cstdint>
#include <string>

namespace xmit {

// MTU and MAC address of `ifname` from the kernel. 0 or -errno.
// kernel: dev_ifsioc_locked() SIOCGIFMTU / SIOCGIFHWADDR.
int query_link(const std::string& ifname, uint32_t* mtu, uint8_t mac[6]);

// How many RX queues `ifname` runs (its channels: rx + combined). 1 where the driver does not say
// (no ethtool get_channels). 0 or -errno. kernel: ethtool_get_channels(), dev->real_num_rx_queues.
int query_rx_queues(const std::string& ifname, uint32_t* queues);

}  // namespace xmit
