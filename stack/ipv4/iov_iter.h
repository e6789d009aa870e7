// stack/ipv4/iov_iter.h — the caller's iovec as a source that copy routines consume in order.
// Kernel counterparts: struct iov_iter (ITER_IOVEC), copy_from_iter_full(),
// csum_and_copy_from_iter_full(), lib/iov_iter.c + net/core/datagram.c.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "absl/types/span.h"
#include "stack/base/checksum.h"

namespace xmit {

// User memory is read with memcpy: an unmapped address faults in the process as it would in a
// plain memcpy by the program itself. The only -EFAULT detected is the cheap one: a segment with a
// null base and a non-zero length (kernel: access_ok() is no stronger for most bad pointers; the
// real check is the page fault the kernel catches and we cannot).
struct IovIter {
  const iovec* iov = nullptr;
  size_t nr_segs = 0;
  size_t iov_offset = 0;  // into iov[0]
  size_t count = 0;       // bytes left
};

// kernel: import_iovec() / iov_iter_init(). 0, -EFAULT (null base, non-zero length) or -EINVAL
// (the lengths overflow ssize_t).
inline int iov_iter_init(IovIter* it, absl::Span<const iovec> iov) {
  size_t total = 0;
  for (const iovec& v : iov) {
    if (v.iov_base == nullptr && v.iov_len != 0) return -EFAULT;
    if (v.iov_len > static_cast<size_t>(SSIZE_MAX) - total) return -EINVAL;
    total += v.iov_len;
  }
  *it = IovIter{.iov = iov.data(), .nr_segs = iov.size(), .iov_offset = 0, .count = total};
  return 0;
}

// Copies `len` bytes to `to`; with `csum`, also adds their sum (from an even start) to *csum as
// csum_and_copy_from_iter_full() does. False when fewer than `len` bytes are left (nothing is
// consumed then).
inline bool copy_from_iter_full_csum(void* to, size_t len, IovIter* it, wsum* csum) {
  if (len > it->count) return false;
  auto* dst = static_cast<uint8_t*>(to);
  size_t done = 0;
  while (done < len) {
    while (it->iov_offset == it->iov->iov_len) {  // skip exhausted (and empty) segments
      ++it->iov;
      --it->nr_segs;
      it->iov_offset = 0;
    }
    size_t n = it->iov->iov_len - it->iov_offset;
    if (n > len - done) n = len - done;
    const uint8_t* src = static_cast<const uint8_t*>(it->iov->iov_base) + it->iov_offset;
    if (csum != nullptr) {
      *csum = csum_block_add(*csum, csum_partial_copy_nocheck(src, dst + done, n), done);
    } else {
      std::memcpy(dst + done, src, n);
    }
    it->iov_offset += n;
    done += n;
  }
  it->count -= len;
  return true;
}

// kernel: copy_from_iter_full(), include/linux/uio.h
inline bool copy_from_iter_full(void* to, size_t len, IovIter* it) {
  return copy_from_iter_full_csum(to, len, it, nullptr);
}

// The next contiguous run of at most `max` bytes (within one iovec segment), consumed without
// copying: *p is where it lies. Returns its length (0 when nothing is left). kernel:
// iov_iter_get_pages2() as __zerocopy_sg_from_iter() takes the caller's pages instead of copying
inline size_t iov_iter_next_run(IovIter* it, size_t max, const uint8_t** p) {
  if (max > it->count) max = it->count;
  if (max == 0) return 0;
  while (it->iov_offset == it->iov->iov_len) {
    ++it->iov;
    --it->nr_segs;
    it->iov_offset = 0;
  }
  size_t n = it->iov->iov_len - it->iov_offset;
  if (n > max) n = max;
  *p = static_cast<const uint8_t*>(it->iov->iov_base) + it->iov_offset;
  it->iov_offset += n;
  it->count -= n;
  return n;
}

// What the kernel adds to a datagram's truesize (and the send buffer) when it pins the next `len`
// bytes' pages instead of copying them (MSG_ZEROCOPY): each iov_iter_get_pages2() run covers one
// iovec segment and adds PAGE_ALIGN(its bytes + their offset in the first page). Nothing is
// consumed. kernel: __zerocopy_sg_from_iter(), net/core/datagram.c
inline uint32_t iov_iter_pinned_truesize(const IovIter& it, size_t len) {
  constexpr uintptr_t kPage = 4096;
  const iovec* v = it.iov;
  size_t off = it.iov_offset;
  uint64_t truesize = 0;
  for (size_t seg = 0; len > 0 && seg < it.nr_segs; ++seg, ++v, off = 0) {
    size_t n = v->iov_len - off;
    if (n == 0) continue;
    if (n > len) n = len;
    const uintptr_t start = (reinterpret_cast<uintptr_t>(v->iov_base) + off) % kPage;
    truesize += (start + n + kPage - 1) & ~(kPage - 1);
    len -= n;
  }
  return static_cast<uint32_t>(truesize);
}

// A source the copy pulls from only once it holds the room for the bytes (an skb with space in its
// payload page): the counterpart of the kernel's ITER_BVEC over pipe or page-cache pages that
// splice and sendfile hand to sendmsg with MSG_SPLICE_PAGES. The kernel gives back, unread, what the
// socket did not take (splice_to_socket() consumes from the pipe only what sock_sendmsg() took);
// a pull source is never asked for more than is already placed, so nothing is read that is not
// sent. `pull` copies up to `len` bytes to `to` and returns how many, fewer at the source's end,
// or -errno. It runs under the stack's lock, so it must never block: the kernel reads the pages
// (splice_direct_to_actor()'s do_splice_read()) under no socket lock.
//
// A source that can have to wait (a file on slow storage, FUSE, NFS) sets `wait`: its pull then
// returns -EAGAIN, having moved nothing, when the bytes are not at hand (a preadv2(RWF_NOWAIT)
// that found them outside the page cache), and the socket calls `wait` with the stack's lock
// released — it blocks until the next pull can be served (reads ahead into memory the source owns)
// — then takes the lock again, checks the socket again and pulls again. 0, or the source's -errno.
struct PullSource {
  ssize_t (*pull)(void* ctx, void* to, size_t len) = nullptr;
  int (*wait)(void* ctx) = nullptr;
  void* ctx = nullptr;
  int err = 0;           // the source's -errno, once it failed
  bool ended = false;    // it gave fewer bytes than asked (its end, or err): no more pulls
  bool blocked = false;  // the last pull would have blocked: wait() (lock released) before the next
};

// Pulls up to `len` bytes into `to`: how many arrived (0 once the source ended, or blocked).
inline size_t pull_from_source(PullSource* src, void* to, size_t len) {
  if (src->ended || src->blocked || len == 0) return 0;
  ssize_t r = src->pull(src->ctx, to, len);
  if (r == -EAGAIN && src->wait != nullptr) {
    src->blocked = true;
    return 0;
  }
  if (r < 0) {
    src->err = static_cast<int>(r);
    src->ended = true;
    return 0;
  }
  if (static_cast<size_t>(r) < len) src->ended = true;
  return static_cast<size_t>(r);
}

// Where a socket's received bytes go when they are spliced out (kernel: tcp_splice_read()'s
// skb_splice_bits() into the pipe): `push` takes up to `len` bytes from `from` without ever
// blocking (it runs under the stack's lock) and returns how many it took, -EAGAIN when it has no
// room, or another -errno. The socket consumes exactly what it took, under the same lock.
struct PushSink {
  ssize_t (*push)(void* ctx, const void* from, size_t len) = nullptr;
  void* ctx = nullptr;
};

}  // namespace xmit
