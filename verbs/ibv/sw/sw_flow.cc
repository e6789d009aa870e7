// verbs/ibv/sw/sw_flow.cc — flow rules of the software device: the ibv_flow_attr specs the backend
// uses (ETH, IPv4, TCP, UDP) folded into value/mask pairs, and matching a received frame.
// Semantics from ibv_create_flow(3): each spec's val is compared under its mask; a rule matches
// when all its specs do; the rule of lowest `priority` value wins.
#include <netinet/in.h>

#include <cerrno>
#include <cstring>

#include "stack/base/byteorder.h"
#include "verbs/ibv/sw/sw_objects.h"

namespace xmit::ibv::sw {
namespace {

constexpr uint32_t kEthHlen = 14;

}  // namespace

int sw_flow_parse(const ibv_flow_attr* attr, SwFlow* f) {
  // IBV_FLOW_ATTR_NORMAL is the only type the backend creates; the sniffer and default rules are
  // something else (and need other privileges on hardware).
  if (attr->type != IBV_FLOW_ATTR_NORMAL) return EOPNOTSUPP;
  if (attr->comp_mask != 0 || attr->flags != 0) return EINVAL;
  if (attr->port != 1) return EINVAL;
  const auto* p = reinterpret_cast<const uint8_t*>(attr) + sizeof(ibv_flow_attr);
  const auto* end = reinterpret_cast<const uint8_t*>(attr) + attr->size;
  if (attr->size < sizeof(ibv_flow_attr)) return EINVAL;
  f->priority = attr->priority;
  for (int i = 0; i < attr->num_of_specs; ++i) {
    ibv_flow_spec_tcp_udp hdr;  // type and size lead every spec
    if (p + 8 > end) return EINVAL;
    memcpy(&hdr, p, 8);
    if (hdr.size < 8 || p + hdr.size > end) return EINVAL;
    switch (hdr.type) {
      case IBV_FLOW_SPEC_ETH: {
        if (hdr.size != sizeof(ibv_flow_spec_eth)) return EINVAL;
        ibv_flow_spec_eth s;
        memcpy(&s, p, sizeof s);
        if (s.mask.vlan_tag != 0) return EOPNOTSUPP;  // untagged frames only on this device
        for (int k = 0; k < 6; ++k) {
          f->dmac_m[k] = s.mask.dst_mac[k];
          f->dmac[k] = s.val.dst_mac[k] & s.mask.dst_mac[k];
          f->smac_m[k] = s.mask.src_mac[k];
          f->smac[k] = s.val.src_mac[k] & s.mask.src_mac[k];
        }
        f->ether_type_m = s.mask.ether_type;
        f->ether_type = s.val.ether_type & s.mask.ether_type;
        break;
      }
      case IBV_FLOW_SPEC_IPV4: {
        if (hdr.size != sizeof(ibv_flow_spec_ipv4)) return EINVAL;
        ibv_flow_spec_ipv4 s;
        memcpy(&s, p, sizeof s);
        f->sip_m = s.mask.src_ip;
        f->sip = s.val.src_ip & s.mask.src_ip;
        f->dip_m = s.mask.dst_ip;
        f->dip = s.val.dst_ip & s.mask.dst_ip;
        f->ether_type = cpu_to_be16(0x0800);
        f->ether_type_m = 0xffff;
        break;
      }
      case IBV_FLOW_SPEC_TCP:
      case IBV_FLOW_SPEC_UDP: {
        if (hdr.size != sizeof(ibv_flow_spec_tcp_udp)) return EINVAL;
        ibv_flow_spec_tcp_udp s;
        memcpy(&s, p, sizeof s);
        f->proto = hdr.type == IBV_FLOW_SPEC_TCP ? IPPROTO_TCP : IPPROTO_UDP;
        f->sport_m = s.mask.src_port;
        f->sport = s.val.src_port & s.mask.src_port;
        f->dport_m = s.mask.dst_port;
        f->dport = s.val.dst_port & s.mask.dst_port;
        break;
      }
      default:
        return EOPNOTSUPP;
    }
    p += hdr.size;
  }
  return 0;
}

bool sw_flow_match(const SwFlow& f, const uint8_t* frame, uint32_t len) {
  if (len < kEthHlen) return false;
  for (int k = 0; k < 6; ++k) {
    if ((frame[k] & f.dmac_m[k]) != f.dmac[k]) return false;
    if ((frame[6 + k] & f.smac_m[k]) != f.smac[k]) return false;
  }
  if ((load_raw16(frame + 12) & f.ether_type_m) != f.ether_type) return false;
  const bool l3 = f.sip_m != 0 || f.dip_m != 0 || f.proto != 0;
  if (!l3) return true;
  if (load_raw16(frame + 12) != cpu_to_be16(0x0800) || len < kEthHlen + 20) return false;
  const uint8_t* ip = frame + kEthHlen;
  const uint32_t ihl = (ip[0] & 0xfu) * 4;
  if ((ip[0] >> 4) != 4 || ihl < 20 || kEthHlen + ihl > len) return false;
  if ((load_raw32(ip + 12) & f.sip_m) != f.sip) return false;
  if ((load_raw32(ip + 16) & f.dip_m) != f.dip) return false;
  if (f.proto == 0) return true;
  if (ip[9] != f.proto) return false;
  if ((load_be16(ip + 6) & 0x1fff) != 0) return false;  // a later fragment carries no ports
  if (kEthHlen + ihl + 4 > len) return false;
  const uint8_t* l4 = ip + ihl;
  return (load_raw16(l4) & f.sport_m) == f.sport && (load_raw16(l4 + 2) & f.dport_m) == f.dport;
}

}  // namespace xmit::ibv::sw
