// tests/dev/test_frames.cc — frame builders and reference checksums for the device tests.
#include "tests/dev/test_frames.h"

#include <cstring>

namespace xmit::testing {
namespace {

void put16(std::vector<uint8_t>& f, uint32_t off, uint16_t v) {
  f[off] = static_cast<uint8_t>(v >> 8);
  f[off + 1] = static_cast<uint8_t>(v);
}
void put32(std::vector<uint8_t>& f, uint32_t off, uint32_t v) {
  put16(f, off, static_cast<uint16_t>(v >> 16));
  put16(f, off + 2, static_cast<uint16_t>(v));
}

// Plain 32-bit accumulation of 16-bit words, folded at the end.
uint32_t ref_sum(const uint8_t* p, uint32_t len) {
  uint32_t sum = 0;
  for (uint32_t i = 0; i < len; ++i) sum += (i % 2 == 0) ? uint32_t{p[i]} << 8 : p[i];
  while (sum > 0xffff) sum = (sum >> 16) + (sum & 0xffff);
  return sum;
}

uint32_t fold(uint32_t sum) {
  while (sum > 0xffff) sum = (sum >> 16) + (sum & 0xffff);
  return sum;
}

uint32_t pseudo_sum(const std::vector<uint8_t>& f, uint32_t l4_len) {
  return fold(ref_sum(f.data() + kEthLen + 12, 8) + f[kEthLen + 9] + l4_len);
}

}  // namespace

uint16_t be16_at(const std::vector<uint8_t>& f, uint32_t off) {
  return static_cast<uint16_t>(f[off] << 8 | f[off + 1]);
}
uint32_t be32_at(const std::vector<uint8_t>& f, uint32_t off) {
  return uint32_t{be16_at(f, off)} << 16 | be16_at(f, off + 2);
}

std::vector<uint8_t> make_frame(const L4Spec& s) {
  const uint32_t l4h = l4_hdr_len(s.protocol) + (s.protocol == 6 ? static_cast<uint32_t>(s.tcp_options.size()) : 0);
  const uint32_t l4_len = l4h + s.payload_len;
  std::vector<uint8_t> f(kEthLen + kIpLen + l4_len, 0);
  std::memcpy(f.data(), kMacB, 6);
  std::memcpy(f.data() + 6, kMacA, 6);
  put16(f, 12, 0x0800);
  const uint32_t ip = kEthLen;
  f[ip] = 0x45;
  put16(f, ip + 2, static_cast<uint16_t>(kIpLen + l4_len));
  put16(f, ip + 4, s.ip_id);
  put16(f, ip + 6, s.frag_off);
  f[ip + 8] = 64;
  f[ip + 9] = s.protocol;
  put32(f, ip + 12, s.saddr);
  put32(f, ip + 16, s.daddr);
  if (!s.ip_csum_zero) put16(f, ip + 10, static_cast<uint16_t>(~ref_sum(f.data() + ip, kIpLen)));
  const uint32_t l4 = l4_offset();
  put16(f, l4, s.sport);
  put16(f, l4 + 2, s.dport);
  if (s.protocol == 6) {
    put32(f, l4 + 4, s.seq);
    put32(f, l4 + 8, 1);  // ack_seq
    f[l4 + 12] = static_cast<uint8_t>((l4h / 4) << 4);
    if (!s.tcp_options.empty()) std::memcpy(f.data() + l4 + 20, s.tcp_options.data(), s.tcp_options.size());
    f[l4 + 13] = s.tcp_flags;
    put16(f, l4 + 14, 65535);
  } else {
    put16(f, l4 + 4, static_cast<uint16_t>(l4_len));
  }
  for (uint32_t i = 0; i < s.payload_len; ++i) f[l4 + l4h + i] = static_cast<uint8_t>(s.payload_seed + i);
  const uint32_t pseudo = pseudo_sum(f, l4_len);
  const uint32_t co = l4 + l4_csum_offset(s.protocol);
  if (s.partial_csum) {
    put16(f, co, static_cast<uint16_t>(pseudo));  // kernel: ~csum_tcpudp_magic(..., 0)
  } else {
    uint16_t c = static_cast<uint16_t>(~fold(pseudo + ref_sum(f.data() + l4, l4_len)));
    put16(f, co, (s.protocol == 17 && c == 0) ? 0xffff : c);
  }
  return f;
}

bool ipv4_csum_ok(const std::vector<uint8_t>& f) {
  return ref_sum(f.data() + kEthLen, (f[kEthLen] & 0xf) * 4u) == 0xffff;
}

bool l4_csum_ok(const std::vector<uint8_t>& f) {
  const uint32_t l4_len = be16_at(f, kEthLen + 2) - kIpLen;
  return fold(pseudo_sum(f, l4_len) + ref_sum(f.data() + l4_offset(), l4_len)) == 0xffff;
}

}  // namespace xmit::testing
