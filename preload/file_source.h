// preload/file_source.h — sendfile()'s source (preload/splice.cc): a file read from an offset into
// the socket's payload pages as it queues them, never waiting under the stack's lock. Kernel
// counterpart: splice_direct_to_actor()'s do_splice_read() (filemap_splice_read(), mm/filemap.c).
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include <cstddef>
#include <memory>

namespace xmit {

// preadv2(fd, one buffer, off, rwf): the count, or -errno.
ssize_t file_read_at(int fd, void* buf, size_t len, off64_t off, int rwf) noexcept;

// The file from `pos`, as a PullSource's ctx (stack/ipv4/iov_iter.h) with file_pull()/file_wait().
// A pull reads with RWF_NOWAIT, which never waits for the disk (or a FUSE/NFS server): pages outside
// the page cache are -EAGAIN, and the socket then calls file_wait() with the stack's lock released,
// which reads ahead (blocking) into `stage`; the next pulls are served from it. A file system
// without RWF_NOWAIT (EOPNOTSUPP) is read only that way. A pull never returns part of what it was
// asked for unless the transfer ends there (the file's end, or a read error after some bytes): a
// short count ends the send. Reading the same bytes again after -EAGAIN is harmless for a file (the
// position moves only by what was sent).
//
// An O_DIRECT file (`direct`) is read as the kernel reads it (copy_splice_read()): in rounds of
// min(what is left of the count, kStage) bytes, each from where the last one ended, into page-aligned
// memory, every round a read of its own that the file system may refuse (EINVAL for an unaligned
// offset or length): nothing is read in place, each wait appends the next round behind the bytes
// of the last one not yet pulled.
struct FileSource {
  static constexpr size_t kStage = 65536;  // the kernel's pipe (16 pages) that sendfile reads into
  static constexpr size_t kAlign = 4096;   // a page: O_DIRECT's memory alignment
  int fd;
  off64_t pos;
  // The reads (a test's fake replaces them), and whether a blocking read a signal interrupted is
  // made again (the kernel's -ERESTARTSYS under an SA_RESTART handler; null: never, -EINTR).
  ssize_t (*read)(int fd, void* buf, size_t len, off64_t off, int rwf) = file_read_at;
  bool (*restarts)() = nullptr;
  bool nowait = true;  // RWF_NOWAIT taken (false after EOPNOTSUPP, and for O_DIRECT)
  bool direct = false;  // O_DIRECT: the kernel's rounds, up to `end`
  off64_t end = 0;      // with direct: the offset the count ends at
  std::unique_ptr<char[]> stage;  // the read-ahead, allocated at the first wait
  size_t stage_cap = 0;
  char* stage_data = nullptr;  // the byte at stage_pos (page-aligned where a round begins)
  off64_t stage_pos = 0;
  size_t stage_len = 0;
  bool stage_end = false;  // this transfer ends at stage_pos + stage_len: the file's end, or a read error
  size_t want = 0;         // the last pull's length: what the read-ahead must hold at least
};

// `size` bytes at a page (FileSource::kAlign) boundary inside *mem, which is allocated anew only
// when *cap is short of it (*cap: what *mem holds); nullptr when there is no memory. As the
// kernel's pipe pages, it takes an O_DIRECT file's reads.
char* page_aligned(std::unique_ptr<char[]>* mem, size_t* cap, size_t size);

// PullSource::pull: up to `len` bytes from `pos` into `to` without waiting; -EAGAIN (nothing moved)
// when they are not at hand.
ssize_t file_pull(void* ctx, void* to, size_t len);

// PullSource::wait, with the stack's lock released: reads (blocking) at least what the last pull
// asked for, up to kStage, from `pos` into the stage. 0, or the read's -errno when it failed at
// `pos` itself; a read that fails after some bytes ends the transfer after them.
int file_wait(void* ctx);

}  // namespace xmit
