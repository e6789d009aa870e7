// tests/tcp/tcp_urg_test.cc — urgent data on receive, as Linux: the urgent pointer (BSD
// convention: one past the byte, net.ipv4.tcp_stdurg = 0) marks a byte that recv(MSG_OOB) returns
// and the stream skips unless SO_OOBINLINE; a read stops before the mark; SIOCATMARK; POLLPRI
// and POLLIN's extra byte; a pointer ahead of the data (TCP_URG_NOTYET, EAGAIN); MSG_PEEK and
// MSG_TRUNC; a second pointer while the first byte is unread; old pointers ignored. Payload byte i
// of the peer's stream is the low byte of kPeerIsn + i (tcp_bed.h).
#include <poll.h>
#include <sys/socket.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stack/tcp/tcp_conn.h"
#include "stack/tcp/tcp_urg.h"
#include "tests/tcp/tcp_bed.h"

namespace xmit::testing_tcp {
namespace {

constexpr uint8_t kUrg = TCPHDR_ACK | TCPHDR_URG | TCPHDR_PSH;

uint8_t stream_byte(uint32_t off) { return static_cast<uint8_t>(kPeerIsn + off); }

std::vector<uint8_t> stream(uint32_t off, uint32_t len) {
  std::vector<uint8_t> v;
  for (uint32_t i = 0; i < len; ++i) v.push_back(stream_byte(off + i));
  return v;
}

// Reads the urgent byte: the result, the byte (or -1 untouched), the msg_flags.
struct Oob {
  int r;
  int byte;
  int msg_flags;
  bool operator==(const Oob&) const = default;
};
Oob recv_oob(TcpBed& bed, size_t len = 1, int flags = 0) {
  uint8_t c = 0xee;  // not a stream byte of these tests (kPeerIsn 5000: 0x88...)
  int mf = 0;
  int r = tcp_recv_urg(&bed.tp, &c, len, flags, &mf);
  int byte = c == 0xee ? -1 : c;
  return Oob{r, byte, mf};
}

// send(fd, "0123456789" with byte 4 last of a MSG_OOB send): URG, pointer 5. The byte is valid at
// once; a read stops before it (SIOCATMARK then true); recv(MSG_OOB) takes it, once; the stream
// goes on without it, and reading past the mark ends the urgent state.
TEST(TcpUrg, ByteOutOfBandAndReadStopsAtMark) {
  TcpBed bed;
  bed.enable_receive();
  bed.data(0, 10, kUrg, 0, 5);
  EXPECT_TRUE(bed.tp.sigurg_pending);  // sk_send_sigurg() due
  EXPECT_EQ(bed.tp.urg_data, TCP_URG_VALID | stream_byte(4));
  EXPECT_EQ(bed.tp.urg_seq, kPeerIsn + 4);
  EXPECT_FALSE(tcp_at_mark(&bed.tp));
  EXPECT_EQ(tcp_poll(&bed.tp) & (POLLPRI | POLLIN), POLLPRI | POLLIN);
  std::vector<uint8_t> buf;
  EXPECT_EQ(bed.read(&buf, 100), 4);
  EXPECT_EQ(buf, stream(0, 4));
  EXPECT_TRUE(tcp_at_mark(&bed.tp));
  EXPECT_EQ(recv_oob(bed), (Oob{1, stream_byte(4), MSG_OOB}));
  EXPECT_EQ(bed.tp.urg_data, TCP_URG_READ);
  EXPECT_EQ(tcp_poll(&bed.tp) & POLLPRI, 0);
  EXPECT_EQ(recv_oob(bed), (Oob{-EINVAL, -1, 0}));  // already read
  EXPECT_TRUE(tcp_at_mark(&bed.tp));
  EXPECT_EQ(bed.read(&buf, 100), 5);
  EXPECT_EQ(buf, stream(5, 5));
  EXPECT_EQ(bed.tp.urg_data, 0);
  EXPECT_FALSE(tcp_at_mark(&bed.tp));
  EXPECT_EQ(bed.tp.rmem_alloc, 0u);
}

// Without recv(MSG_OOB): the second read steps over the byte, and then there is no urgent data
// (EINVAL), as on Linux.
TEST(TcpUrg, ReadingPastTheMarkDropsTheByte) {
  TcpBed bed;
  bed.enable_receive();
  bed.data(0, 10, kUrg, 0, 5);
  std::vector<uint8_t> buf;
  EXPECT_EQ(bed.read(&buf, 100), 4);
  EXPECT_EQ(bed.read(&buf, 100), 5);
  EXPECT_EQ(buf, stream(5, 5));
  EXPECT_EQ(recv_oob(bed), (Oob{-EINVAL, -1, 0}));
  EXPECT_EQ(bed.read(&buf, 100), -EAGAIN);
}

// A read into a buffer that ends before the mark stops there; one at the mark with a 1-byte
// buffer skips the byte and gives the next.
TEST(TcpUrg, SmallReadsAroundTheMark) {
  TcpBed bed;
  bed.enable_receive();
  bed.data(0, 10, kUrg, 0, 5);
  std::vector<uint8_t> buf;
  EXPECT_EQ(bed.read(&buf, 3), 3);
  EXPECT_EQ(bed.read(&buf, 3), 1);
  EXPECT_EQ(buf, stream(3, 1));
  EXPECT_EQ(bed.read(&buf, 1), 1);
  EXPECT_EQ(buf, stream(5, 1));
}

// SO_OOBINLINE: the byte stays in the stream (the read still stops before the mark), MSG_OOB is
// EINVAL, POLLPRI still tells of it.
TEST(TcpUrg, Inline) {
  TcpBed bed;
  bed.enable_receive();
  bed.tp.sock_urginline = true;
  bed.data(0, 10, kUrg, 0, 5);
  EXPECT_NE(tcp_poll(&bed.tp) & POLLPRI, 0);
  EXPECT_EQ(recv_oob(bed), (Oob{-EINVAL, -1, 0}));
  std::vector<uint8_t> buf;
  EXPECT_EQ(bed.read(&buf, 100), 4);
  EXPECT_TRUE(tcp_at_mark(&bed.tp));
  EXPECT_EQ(bed.read(&buf, 100), 6);
  EXPECT_EQ(buf, stream(4, 6));
  EXPECT_EQ(bed.tp.urg_data, 0);
}

// A pointer beyond the segment: TCP_URG_NOTYET — recv(MSG_OOB) says EAGAIN (never blocks), no
// POLLPRI, reads are not stopped before the mark is reached; the byte is taken from the segment
// that brings it, URG flag or not.
TEST(TcpUrg, PointerAheadOfTheData) {
  TcpBed bed;
  bed.enable_receive();
  bed.data(0, 10, kUrg, 0, 15);  // urgent byte: 14
  EXPECT_EQ(bed.tp.urg_data, TCP_URG_NOTYET);
  EXPECT_EQ(recv_oob(bed), (Oob{-EAGAIN, -1, 0}));
  EXPECT_EQ(tcp_poll(&bed.tp) & POLLPRI, 0);
  std::vector<uint8_t> buf;
  EXPECT_EQ(bed.read(&buf, 100), 10);
  EXPECT_EQ(recv_oob(bed), (Oob{-EAGAIN, -1, 0}));
  bed.tp.sigurg_pending = false;
  bed.data(10, 10);
  EXPECT_FALSE(bed.tp.sigurg_pending);  // the byte, not a new pointer: no signal
  EXPECT_EQ(bed.tp.urg_data, TCP_URG_VALID | stream_byte(14));
  EXPECT_NE(tcp_poll(&bed.tp) & POLLPRI, 0);
  EXPECT_EQ(bed.read(&buf, 100), 4);
  EXPECT_EQ(buf, stream(10, 4));
  EXPECT_EQ(recv_oob(bed), (Oob{1, stream_byte(14), MSG_OOB}));
  EXPECT_EQ(bed.read(&buf, 100), 5);
  EXPECT_EQ(buf, stream(15, 5));
}

// MSG_PEEK leaves the byte; MSG_TRUNC returns 1 without copying (and reads it); a zero-length
// buffer gets 0 with MSG_TRUNC in msg_flags (and reads it too).
TEST(TcpUrg, PeekAndTrunc) {
  TcpBed bed;
  bed.enable_receive();
  bed.data(0, 3, kUrg, 0, 2);  // urgent byte: 1
  EXPECT_EQ(recv_oob(bed, 1, MSG_PEEK), (Oob{1, stream_byte(1), MSG_OOB}));
  EXPECT_EQ(recv_oob(bed, 1, MSG_PEEK), (Oob{1, stream_byte(1), MSG_OOB}));
  EXPECT_EQ(recv_oob(bed, 1, MSG_TRUNC), (Oob{1, -1, MSG_OOB}));
  EXPECT_EQ(recv_oob(bed), (Oob{-EINVAL, -1, 0}));
  bed.data(3, 3, kUrg, 0, 2);  // urgent byte: 4
  EXPECT_EQ(recv_oob(bed, 0), (Oob{0, -1, MSG_OOB | MSG_TRUNC}));
  EXPECT_EQ(recv_oob(bed), (Oob{-EINVAL, -1, 0}));
  // The newer pointer made byte 1 ordinary data again; byte 4 is stepped over.
  std::vector<uint8_t> buf;
  EXPECT_EQ(bed.read(&buf, 100), 4);
  EXPECT_EQ(buf, stream(0, 4));
  EXPECT_EQ(bed.read(&buf, 100, MSG_PEEK), 1);
  EXPECT_EQ(buf, stream(5, 1));
  EXPECT_EQ(bed.tp.copied_seq, kPeerIsn + 4);  // a peek steps over it without moving copied_seq
  EXPECT_EQ(bed.read(&buf, 100), 1);
  EXPECT_EQ(buf, stream(5, 1));
}

// Only the urgent byte is unread and it is next: POLLIN wants one byte more (tcp_poll's target + 1);
// a read steps over it and finds nothing (EAGAIN).
TEST(TcpUrg, PollTargetBeforeTheByte) {
  TcpBed bed;
  bed.enable_receive();
  bed.data(0, 1, kUrg, 0, 1);
  EXPECT_TRUE(tcp_at_mark(&bed.tp));
  EXPECT_EQ(tcp_poll(&bed.tp) & (POLLIN | POLLPRI), POLLPRI);
  std::vector<uint8_t> buf;
  EXPECT_EQ(bed.read(&buf, 100), -EAGAIN);
  EXPECT_EQ(bed.tp.copied_seq, kPeerIsn + 1);
  EXPECT_EQ(bed.tp.urg_data, 0);
  EXPECT_EQ(bed.tp.rmem_alloc, 0u);
  EXPECT_EQ(tcp_poll(&bed.tp) & (POLLIN | POLLPRI), 0);
}

// A second urgent pointer while the first byte is next and unread: the old byte leaves the stream
// (its skb freed when that was all of it) and the new one is the urgent byte.
TEST(TcpUrg, NewPointerWhileTheByteIsUnread) {
  TcpBed bed;
  bed.enable_receive();
  bed.data(0, 1, kUrg, 0, 1);  // "A" with MSG_OOB
  bed.data(1, 1, kUrg, 0, 1);  // "B" with MSG_OOB
  EXPECT_EQ(bed.tp.urg_data, TCP_URG_VALID | stream_byte(1));
  EXPECT_EQ(bed.tp.copied_seq, kPeerIsn + 1);
  EXPECT_EQ(bed.tp.receive_queue.qlen, 1u);
  EXPECT_EQ(bed.tp.rmem_alloc, 1u);
  EXPECT_EQ(recv_oob(bed), (Oob{1, stream_byte(1), MSG_OOB}));
  std::vector<uint8_t> buf;
  EXPECT_EQ(bed.read(&buf, 100), -EAGAIN);
  EXPECT_EQ(bed.tp.rmem_alloc, 0u);
}

// A second pointer while the first byte is unread but not next: the first byte goes back into the
// stream (a read returns it), the second is the urgent byte. When the first byte is next to read
// instead, it leaves the stream (the "Double Dutch" comment of tcp_check_urg()).
TEST(TcpUrg, TwoMarks) {
  TcpBed bed;
  bed.enable_receive();
  bed.data(0, 4, kUrg, 0, 2);  // urgent byte 1
  bed.tp.sigurg_pending = false;
  bed.data(4, 4, kUrg, 0, 2);  // urgent byte 5: the newer pointer wins, and is signalled
  EXPECT_TRUE(bed.tp.sigurg_pending);
  EXPECT_EQ(bed.tp.urg_data, TCP_URG_VALID | stream_byte(5));
  bed.tp.sigurg_pending = false;
  bed.data(4, 4, kUrg, 0, 2);  // the same pointer again (a retransmission): nothing new
  EXPECT_FALSE(bed.tp.sigurg_pending);
  std::vector<uint8_t> buf;
  EXPECT_EQ(bed.read(&buf, 100), 5);
  EXPECT_EQ(buf, stream(0, 5));
  EXPECT_EQ(recv_oob(bed), (Oob{1, stream_byte(5), MSG_OOB}));

  TcpBed at;
  at.enable_receive();
  at.data(0, 4, kUrg, 0, 2);  // urgent byte 1
  EXPECT_EQ(at.read(&buf, 100), 1);
  EXPECT_TRUE(tcp_at_mark(&at.tp));
  at.data(4, 4, kUrg, 0, 2);  // urgent byte 5
  EXPECT_EQ(at.tp.copied_seq, kPeerIsn + 2);
  EXPECT_FALSE(tcp_at_mark(&at.tp));
  EXPECT_EQ(at.read(&buf, 100), 3);
  EXPECT_EQ(buf, stream(2, 3));
  EXPECT_EQ(recv_oob(at), (Oob{1, stream_byte(5), MSG_OOB}));
}

// A pointer into data already received (a retransmission with URG) or older than what was read is
// ignored.
TEST(TcpUrg, OldPointersIgnored) {
  TcpBed bed;
  bed.enable_receive();
  bed.data(0, 10);
  bed.data(0, 10, kUrg, 0, 5);  // a duplicate: pointer before rcv_nxt
  EXPECT_EQ(bed.tp.urg_data, 0);
  EXPECT_FALSE(bed.tp.sigurg_pending);
  EXPECT_EQ(recv_oob(bed), (Oob{-EINVAL, -1, 0}));
  std::vector<uint8_t> buf;
  EXPECT_EQ(bed.read(&buf, 100), 10);
}

}  // namespace
}  // namespace xmit::testing_tcp
