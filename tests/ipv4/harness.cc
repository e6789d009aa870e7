// tests/ipv4/harness.cc — the stack/ipv4 test bed (see harness.h).
#include "tests/ipv4/harness.h"

#include <netinet/ip.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "gtest/gtest.h"
#include "stack/ipv4/iov_iter.h"

namespace xmit::testing_ipv4 {

// One packet, or a UDP GSO packet's segments linked through next (each recorded; all or none).
int RecordingNeigh::neigh_output(sk_buff* skb, const IpTxInfo& info) {
  ++calls;
  while (skb != nullptr) {
    sk_buff* next = skb->next;
    skb->next = nullptr;
    Sent s;
    s.bytes.resize(skb->len);
    EXPECT_EQ(skb_copy_bits(skb, 0, s.bytes.data(), skb->len), 0);
    s.info = info;
    s.ip_summed = skb->ip_summed;
    s.csum_start_from_data = static_cast<uint16_t>(skb_checksum_start_offset(skb));
    s.csum_offset = skb->csum_offset;
    s.headroom = skb_headroom(skb);
    kfree_skb(skb);
    if (fail_with == 0) sent.push_back(std::move(s));
    skb = next;
  }
  return fail_with;
}

uint16_t CountingIdents::select_ident(be32 daddr, be32 saddr, uint8_t protocol, int segs, uint64_t) {
  ++calls;
  last_daddr = daddr;
  last_saddr = saddr;
  last_protocol = protocol;
  uint16_t id = next;
  next = static_cast<uint16_t>(next + segs);
  return id;
}

Bed::Bed(uint32_t nr_skbs, uint32_t nr_frags, uint32_t buf_size) {
  EXPECT_EQ(BufPool::create(nr_skbs, buf_size, &heads), 0);
  EXPECT_EQ(BufPool::create(nr_frags, buf_size, &frags), 0);
  EXPECT_EQ(SkbPool::create(nr_skbs, heads.get(), &skbs), 0);
  std::memset(heads->base(), 0xFF, heads->size());  // a byte the stack forgets to write shows
  std::memset(frags->base(), 0xFF, frags->size());
  dev = NetdevFeatures{.max_segs = 1, .mtu = 1500, .max_frame = 1514};
}

Bed::~Bed() = default;

IpOutCtx Bed::ctx() {
  return IpOutCtx{.skbs = skbs.get(),
                  .frags = frags.get(),
                  .idents = &idents,
                  .neigh = &neigh,
                  .mib = &mib,
                  .sysctl = &sysctl,
                  .now_ns = now_ns};
}

Ipv4Route Bed::route() const {
  if (use_rt_override) {
    Ipv4Route r = rt_override;
    r.dev = &dev;
    return r;
  }
  return Ipv4Route{.oif = 3, .saddr = kSaddr, .daddr = kDaddr, .nexthop = kDaddr, .dev = &dev};
}

Flowi4 Bed::fl4() const {
  return Flowi4{.daddr = kDaddr, .saddr = kSaddr, .fl4_sport = cpu_to_be16(sport),
                .fl4_dport = cpu_to_be16(kDport)};
}

InetSock Bed::sock() const {
  InetSock sk;
  sk.inet_saddr = kSaddr;
  sk.inet_sport = cpu_to_be16(kSport);
  return sk;
}

int Bed::send(InetSock* sk, const std::vector<uint8_t>& payload, unsigned flags, const IpcmCookie* ipc_in) {
  IpcmCookie ipc;
  ipcm_init_sk(&ipc, *sk);
  if (ipc_in != nullptr) ipc = *ipc_in;
  iovec iov{const_cast<uint8_t*>(payload.data()), payload.size()};
  IovIter it;
  int err = iov_iter_init(&it, absl::MakeConstSpan(&iov, 1));
  if (err) return err;
  sk_buff* skb = nullptr;
  IpOutCtx c = ctx();
  InetCork cork;
  err = ip_make_skb(c, sk, fl4(), route(), &it, static_cast<int>(payload.size() + 8), 8, ipc, &cork,
                    flags, &skb);
  if (err || skb == nullptr) return err;
  return udp_send_skb(c, sk, &udp_mib, skb, fl4(), cork);
}

int Bed::append(InetSock* sk, const std::vector<uint8_t>& piece, unsigned flags) {
  IpcmCookie ipc;
  ipcm_init_sk(&ipc, *sk);
  iovec iov{const_cast<uint8_t*>(piece.data()), piece.size()};
  IovIter it;
  int err = iov_iter_init(&it, absl::MakeConstSpan(&iov, 1));
  if (err) return err;
  // The UDP layer passes the header length with the first piece only (udp_sendmsg(): up->len).
  bool first = skb_queue_empty(sk->sk_write_queue);
  int transhdrlen = first ? 8 : 0;
  return ip_append_data(ctx(), sk, fl4(), route(), &it, static_cast<int>(piece.size()) + transhdrlen,
                        transhdrlen, ipc, flags);
}

bool Bed::pools_full() const {
  return skbs->nr_free() == skbs->nr_skbs() && heads->nr_free() == heads->nr_bufs() &&
         frags->nr_free() == frags->nr_bufs();
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    v[i] = static_cast<uint8_t>(x >> 16);
  }
  return v;
}

uint16_t ref_csum(const std::vector<uint8_t>& b) {
  uint64_t sum = 0;
  for (size_t i = 0; i + 1 < b.size(); i += 2) sum += static_cast<uint32_t>(b[i] << 8 | b[i + 1]);
  if (b.size() % 2) sum += static_cast<uint32_t>(b.back() << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

uint16_t ref_udp_csum(be32 saddr, be32 daddr, const std::vector<uint8_t>& udp) {
  // pseudo-header (RFC 768) + the datagram with its check field zeroed
  std::vector<uint8_t> all(12 + udp.size());
  std::memcpy(&all[0], &saddr, 4);
  std::memcpy(&all[4], &daddr, 4);
  all[9] = IPPROTO_UDP;
  all[10] = static_cast<uint8_t>(udp.size() >> 8);
  all[11] = static_cast<uint8_t>(udp.size());
  for (size_t i = 0; i < udp.size(); ++i) all[12 + i] = (i == 6 || i == 7) ? 0 : udp[i];
  uint16_t c = ref_csum(all);
  return c == 0 ? 0xffff : c;
}

std::vector<uint8_t> reassemble(const std::vector<Sent>& pkts) {
  std::map<uint32_t, std::vector<uint8_t>> parts;
  bool have_last = false;
  for (const Sent& s : pkts) {
    const auto& b = s.bytes;
    EXPECT_GE(b.size(), 20u);
    uint16_t fo = be16_at(b, 6);
    uint32_t off = (fo & 0x1fff) * 8u;
    if (!(fo & IP_MF)) have_last = true;
    parts[off] = std::vector<uint8_t>(b.begin() + 20, b.end());
  }
  EXPECT_TRUE(have_last);
  std::vector<uint8_t> out;
  for (auto& [off, data] : parts) {
    EXPECT_EQ(off, out.size()) << "hole or overlap at " << off;
    out.insert(out.end(), data.begin(), data.end());
  }
  return out;
}

}  // namespace xmit::testing_ipv4
