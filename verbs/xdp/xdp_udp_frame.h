// verbs/xdp/xdp_udp_frame.h — hand-built Ethernet+IPv4+UDP frames and /proc/net/snmp counters for
// the AF_XDP demo and tests (the stack's wire/ layer does this for real). Kernel: udp_send_skb().
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "stack/base/byteorder.h"
#include "stack/base/checksum.h"

namespace xmit::xdp {

struct UdpEndpoints {
  uint8_t src_mac[6] = {};
  uint8_t dst_mac[6] = {};
  uint32_t saddr = 0;  // network byte order
  uint32_t daddr = 0;
  uint16_t sport = 0;  // host byte order
  uint16_t dport = 0;
};

// A complete frame with both checksums filled in. `ip_id` goes into the IPv4 id field.
inline std::vector<uint8_t> build_udp_frame(const UdpEndpoints& e, const std::string& payload,
                                            uint16_t ip_id = 0) {
  const size_t udp_len = 8 + payload.size();
  std::vector<uint8_t> f(14 + 20 + udp_len);
  uint8_t* p = f.data();
  memcpy(p, e.dst_mac, 6);
  memcpy(p + 6, e.src_mac, 6);
  store_be16(p + 12, 0x0800);
  uint8_t* ip = p + 14;
  ip[0] = 0x45;
  ip[1] = 0;
  store_be16(ip + 2, uint16_t(20 + udp_len));
  store_be16(ip + 4, ip_id);
  store_be16(ip + 6, 0x4000);  // DF
  ip[8] = 64;
  ip[9] = IPPROTO_UDP;
  store_be16(ip + 10, 0);
  memcpy(ip + 12, &e.saddr, 4);
  memcpy(ip + 16, &e.daddr, 4);
  const sum16 ip_check = ip_fast_csum(ip, 5);
  memcpy(ip + 10, &ip_check, 2);
  uint8_t* uh = ip + 20;
  store_be16(uh, e.sport);
  store_be16(uh + 2, e.dport);
  store_be16(uh + 4, uint16_t(udp_len));
  store_be16(uh + 6, 0);
  memcpy(uh + 8, payload.data(), payload.size());
  sum16 check = csum_fold(
      csum_partial(uh, udp_len, csum_tcpudp_nofold(e.saddr, e.daddr, uint32_t(udp_len), IPPROTO_UDP, 0)));
  if (check == 0) check = CSUM_MANGLED_0;
  memcpy(uh + 6, &check, 2);
  return f;
}

struct ParsedUdp {
  uint32_t saddr = 0, daddr = 0;  // network byte order
  uint16_t sport = 0, dport = 0;  // host byte order
  std::string payload;
};

// Parses an untagged Ethernet/IPv4/UDP frame (no options checks beyond lengths); false otherwise.
inline bool parse_udp_frame(const uint8_t* p, size_t len, ParsedUdp* out) {
  if (len < 14 + 20 + 8 || p[12] != 0x08 || p[13] != 0x00) return false;
  const uint8_t* ip = p + 14;
  size_t ihl = (ip[0] & 0xf) * 4u;
  if ((ip[0] >> 4) != 4 || ihl < 20 || ip[9] != IPPROTO_UDP || 14 + ihl + 8 > len) return false;
  const uint8_t* uh = ip + ihl;
  size_t ulen = size_t(uh[4]) << 8 | uh[5];
  if (ulen < 8 || 14 + ihl + ulen > len) return false;
  memcpy(&out->saddr, ip + 12, 4);
  memcpy(&out->daddr, ip + 16, 4);
  out->sport = uint16_t(uh[0] << 8 | uh[1]);
  out->dport = uint16_t(uh[2] << 8 | uh[3]);
  out->payload.assign(reinterpret_cast<const char*>(uh + 8), ulen - 8);
  return true;
}

inline bool parse_mac(const std::string& s, uint8_t mac[6]) {
  unsigned v[6];
  if (sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) return false;
  for (int i = 0; i < 6; ++i) mac[i] = uint8_t(v[i]);
  return true;
}

// One protocol's counters from an snmp file ("Udp" -> {"InDatagrams": n, ...}); empty on error.
// /proc/self/net/snmp is the main thread's namespace, /proc/thread-self/net/snmp the caller's.
inline std::map<std::string, long long> read_snmp(const std::string& proto,
                                                  const char* path = "/proc/thread-self/net/snmp") {
  std::map<std::string, long long> out;
  FILE* f = fopen(path, "re");
  if (f == nullptr) return out;
  std::vector<std::string> names;
  char line[4096];
  while (fgets(line, sizeof line, f) != nullptr) {
    std::istringstream in(line);
    std::string head;
    in >> head;
    if (head != proto + ":") continue;
    std::vector<std::string> fields;
    for (std::string w; in >> w;) fields.push_back(w);
    if (names.empty()) {
      names = fields;
    } else {
      for (size_t i = 0; i < names.size() && i < fields.size(); ++i) out[names[i]] = std::stoll(fields[i]);
      break;
    }
  }
  fclose(f);
  return out;
}

}  // namespace xmit::xdp
