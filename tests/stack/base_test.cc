// tests/stack/base_test.cc — byte order helpers and the checksum module (stack/base), against
// hand-computed RFC 1071 / RFC 791 values and a naive RFC 1071 reference on seeded random data;
// SipHash-2-4 against the reference vectors (the kernel's lib/test_siphash.c).
#include <algorithm>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "stack/base/byteorder.h"
#include "stack/base/checksum.h"
#include "stack/base/siphash.h"
#include "stack/base/stack_mutex.h"

namespace xmit {
namespace {

// The checksum as it appears on the wire, read back as a host-order number.
uint16_t wire_value(sum16 s) {
  uint8_t b[2];
  std::memcpy(b, &s, 2);
  return load_be16(b);
}

// RFC 1071 §4.1, word by word in network order; odd tail padded with zero.
uint16_t naive_checksum(const uint8_t* p, size_t len) {
  uint64_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += (p[i] << 8) | p[i + 1];
  if (len & 1) sum += p[len - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

TEST(ByteOrder, LoadsAndStoresAtAnyAlignment) {
  uint8_t buf[16] = {};
  for (size_t off = 0; off < 8; ++off) {
    std::memset(buf, 0xAA, sizeof buf);
    store_be16(buf + off, 0x1234);
    EXPECT_EQ(buf[off], 0x12);
    EXPECT_EQ(buf[off + 1], 0x34);
    EXPECT_EQ(load_be16(buf + off), 0x1234);
    store_be32(buf + off, 0xdeadbeef);
    EXPECT_EQ(buf[off], 0xde);
    EXPECT_EQ(buf[off + 3], 0xef);
    EXPECT_EQ(load_be32(buf + off), 0xdeadbeefu);
    store_be64(buf + off, 0x0102030405060708ull);
    EXPECT_EQ(buf[off], 0x01);
    EXPECT_EQ(buf[off + 7], 0x08);
    EXPECT_EQ(load_be64(buf + off), 0x0102030405060708ull);
  }
  EXPECT_EQ(be16_to_cpu(cpu_to_be16(0xabcd)), 0xabcd);
  uint8_t n[2];
  store_raw16(n, cpu_to_be16(0x0800));
  EXPECT_EQ(n[0], 0x08);
  EXPECT_EQ(n[1], 0x00);
}

struct CsumCase {
  std::string name;
  std::vector<uint8_t> bytes;
  uint16_t checksum;  // as on the wire
};
void PrintTo(const CsumCase& c, std::ostream* os) { *os << c.name; }

class CsumVectors : public testing::TestWithParam<CsumCase> {};

TEST_P(CsumVectors, MatchesHandComputedValue) {
  const CsumCase& c = GetParam();
  // At every alignment, so unaligned loads and odd starting addresses are covered.
  for (size_t off = 0; off < 8; ++off) {
    std::vector<uint8_t> buf(off + c.bytes.size() + 8, 0xEE);
    std::copy(c.bytes.begin(), c.bytes.end(), buf.begin() + static_cast<ptrdiff_t>(off));
    EXPECT_EQ(wire_value(csum_fold(csum_partial(buf.data() + off, c.bytes.size(), 0))), c.checksum)
        << "offset " << off;
    EXPECT_EQ(wire_value(ip_compute_csum(buf.data() + off, c.bytes.size())), c.checksum);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Rfc1071, CsumVectors,
    testing::Values(
        // RFC 1071 §3: the one's complement sum of 0001 f203 f4f5 f6f7 is ddf2.
        CsumCase{"rfc1071_example", {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, 0x220d},
        // RFC 791 header from the classic example; checksum field zeroed.
        CsumCase{"ipv4_header",
                 {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0,
                  0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7},
                 0xb861},
        CsumCase{"empty", {}, 0xffff},
        CsumCase{"one_byte_is_high_lane", {0x01}, 0xfeff},
        CsumCase{"three_bytes", {0x12, 0x34, 0x56}, 0x97cb},  // 1234 + 5600 = 6834
        CsumCase{"end_around_carry", {0xff, 0xff, 0x00, 0x01}, 0xfffe},
        CsumCase{"negative_zero", {0xff, 0xff, 0xff, 0xff}, 0x0000}),
    [](const testing::TestParamInfo<CsumCase>& i) { return i.param.name; });

TEST(Checksum, IpFastCsumVerifiesToZero) {
  uint8_t iph[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                     0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  EXPECT_EQ(ip_fast_csum(iph, 5), 0);
  iph[8] = 0x3f;  // ttl 63
  EXPECT_NE(ip_fast_csum(iph, 5), 0);
}

TEST(Checksum, RandomDataMatchesNaiveReference) {
  std::mt19937 rng(1071);
  std::vector<uint8_t> buf(4096 + 16);
  for (int iter = 0; iter < 2000; ++iter) {
    size_t len = rng() % 2049;
    size_t off = rng() % 16;
    for (size_t i = 0; i < len; ++i) buf[off + i] = static_cast<uint8_t>(rng());
    ASSERT_EQ(wire_value(ip_compute_csum(buf.data() + off, len)), naive_checksum(buf.data() + off, len))
        << "len " << len << " off " << off;
  }
}

TEST(Checksum, PartialSumSeedIsAdded) {
  std::mt19937 rng(7);
  std::vector<uint8_t> a(301);
  for (auto& b : a) b = static_cast<uint8_t>(rng());
  // Summing in two even-sized steps through the seed equals one pass.
  wsum first = csum_partial(a.data(), 100, 0);
  EXPECT_EQ(csum_fold(csum_partial(a.data() + 100, 201, first)), ip_compute_csum(a.data(), 301));
  EXPECT_EQ(csum_fold(csum_sub(csum_add(first, 0x12345678), 0x12345678)), csum_fold(first));
}

TEST(Checksum, BlockAddSwapsOddOffsets) {
  std::mt19937 rng(42);
  std::vector<uint8_t> a(1500);
  for (int iter = 0; iter < 500; ++iter) {
    size_t len = 1 + rng() % a.size();
    for (size_t i = 0; i < len; ++i) a[i] = static_cast<uint8_t>(rng());
    // Three blocks with arbitrary (often odd) boundaries, summed separately and combined.
    size_t k1 = rng() % (len + 1);
    size_t k2 = k1 + rng() % (len - k1 + 1);
    wsum s = csum_partial(a.data(), k1, 0);
    s = csum_block_add(s, csum_partial(a.data() + k1, k2 - k1, 0), k1);
    s = csum_block_add(s, csum_partial(a.data() + k2, len - k2, 0), k2);
    ASSERT_EQ(csum_fold(s), ip_compute_csum(a.data(), len)) << len << " " << k1 << " " << k2;
    // Removing the last block again gives the sum of the first two.
    wsum back = csum_block_sub(s, csum_partial(a.data() + k2, len - k2, 0), k2);
    ASSERT_EQ(csum_fold(back), ip_compute_csum(a.data(), k2));
  }
  // Without the swap an odd-offset block is summed in the wrong lanes.
  uint8_t b[3] = {0x00, 0x12, 0x34};
  wsum wrong = csum_add(csum_partial(b, 1, 0), csum_partial(b + 1, 2, 0));
  EXPECT_NE(csum_fold(wrong), ip_compute_csum(b, 3));
}

TEST(Checksum, TcpUdpPseudoHeader) {
  // UDP 10.0.0.1:4000 -> 10.0.0.2:53 "hello", checksum computed independently: 0x982a.
  uint8_t udp[13] = {0x0f, 0xa0, 0x00, 0x35, 0x00, 0x0d, 0x00, 0x00, 'h', 'e', 'l', 'l', 'o'};
  be32 saddr, daddr;
  const uint8_t s[4] = {10, 0, 0, 1}, d[4] = {10, 0, 0, 2};
  std::memcpy(&saddr, s, 4);
  std::memcpy(&daddr, d, 4);
  sum16 c = csum_tcpudp_magic(saddr, daddr, sizeof udp, 17, csum_partial(udp, sizeof udp, 0));
  EXPECT_EQ(wire_value(c), 0x982a);
  // Stored, the whole datagram plus pseudo-header verifies to zero.
  std::memcpy(udp + 6, &c, 2);
  EXPECT_EQ(csum_tcpudp_magic(saddr, daddr, sizeof udp, 17, csum_partial(udp, sizeof udp, 0)), 0);
  // The unfolded pseudo-header sum is what a checksum-offloading device is seeded with.
  wsum seed = csum_tcpudp_nofold(saddr, daddr, sizeof udp, 17, 0);
  std::memset(udp + 6, 0, 2);
  EXPECT_EQ(csum_fold(csum_partial(udp, sizeof udp, seed)), c);
}

TEST(Checksum, UdpZeroIsSentAsAllOnes) {
  EXPECT_EQ(udp_csum_mangle0(0), CSUM_MANGLED_0);
  EXPECT_EQ(udp_csum_mangle0(0x1234), 0x1234);
  EXPECT_EQ(udp_csum_mangle0(0xffff), 0xffff);
}

TEST(Checksum, Replace2MatchesRecompute) {
  uint8_t iph[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                     0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  // Decrement the TTL the way a forwarder does and patch the checksum incrementally.
  sum16 check;
  std::memcpy(&check, iph + 10, 2);
  be16 old_word = load_raw16(iph + 8);
  iph[8] = 0x3f;
  csum_replace2(&check, old_word, load_raw16(iph + 8));
  std::memcpy(iph + 10, &check, 2);
  EXPECT_EQ(ip_fast_csum(iph, 5), 0);
  EXPECT_EQ(wire_value(check), 0xb961);
}

TEST(Checksum, CopyAndSum) {
  uint8_t src[7] = {1, 2, 3, 4, 5, 6, 7}, dst[7] = {};
  wsum s = csum_partial_copy_nocheck(src, dst, sizeof src);
  EXPECT_EQ(std::memcmp(src, dst, sizeof src), 0);
  EXPECT_EQ(csum_fold(s), ip_compute_csum(src, sizeof src));
}

// What must not run under the lock (a signal whose handler would run inside the stack) runs once
// the thread is out of it: not while the lock is held, once at the unlock, not again later.
int g_after_unlock_runs = 0;
bool g_held_when_run = true;
void count_after_unlock() {
  ++g_after_unlock_runs;
  g_held_when_run = StackMutex::held_by_this_thread();
}

TEST(StackMutex, AfterUnlockRunsOnceTheThreadLeavesTheStack) {
  StackMutex mu;
  mu.lock();
  StackMutex::after_unlock(count_after_unlock);
  EXPECT_EQ(g_after_unlock_runs, 0);
  mu.unlock();
  EXPECT_EQ(g_after_unlock_runs, 1);
  EXPECT_FALSE(g_held_when_run);
  ASSERT_TRUE(mu.try_lock());
  mu.unlock();
  EXPECT_EQ(g_after_unlock_runs, 1);
}

// SipHash-2-4 with the reference key 00..0f over the 16-byte message 00..0f (vector 16 of
// veorq/SipHash, lib/test_siphash.c), and the message split as siphash_4u32() takes it.
TEST(SipHash, ReferenceVectorOf16Bytes) {
  const siphash_key_t key{{0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull}};
  EXPECT_EQ(siphash_2u64(0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull, &key), 0x3f2acc7f57c29bdbull);
  EXPECT_EQ(siphash_4u32(0x03020100u, 0x07060504u, 0x0b0a0908u, 0x0f0e0d0cu, &key), 0x3f2acc7f57c29bdbull);
  const siphash_key_t other{{0x0706050403020101ull, 0x0f0e0d0c0b0a0908ull}};
  EXPECT_NE(siphash_2u64(0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull, &other), 0x3f2acc7f57c29bdbull);
}

}  // namespace
}  // namespace xmit
