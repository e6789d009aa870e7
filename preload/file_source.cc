// preload/file_source.cc — sendfile()'s source: the file read without waiting under the stack's
// lock, and read ahead with the lock released (see file_source.h).
#include "preload/file_source.h"

#include <errno.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <new>

namespace xmit {

ssize_t file_read_at(int fd, void* buf, size_t len, off64_t off, int rwf) noexcept {
  iovec iov{buf, len};
  ssize_t n = ::preadv2(fd, &iov, 1, off, rwf);
  return n < 0 ? -errno : n;
}

ssize_t file_pull(void* ctx, void* to, size_t len) {
  auto* f = static_cast<FileSource*>(ctx);
  f->want = len;
  size_t done = 0;
  if (f->stage_len > 0 || f->stage_end) {
    const off64_t end = f->stage_pos + static_cast<off64_t>(f->stage_len);
    if (f->pos >= f->stage_pos && f->pos <= end) {
      size_t n = std::min(len, static_cast<size_t>(end - f->pos));
      std::memcpy(to, f->stage_data + (f->pos - f->stage_pos), n);
      done = n;
      if (done < len && f->stage_end) {  // the transfer's end
        f->pos += static_cast<off64_t>(done);
        return static_cast<ssize_t>(done);
      }
    }
  }
  while (done < len) {
    if (!f->nowait) return -EAGAIN;
    ssize_t n = f->read(f->fd, static_cast<char*>(to) + done, len - done, f->pos + static_cast<off64_t>(done),
                        RWF_NOWAIT);
    if (n == -EINTR) continue;
    if (n == -EOPNOTSUPP) {
      f->nowait = false;
      return -EAGAIN;
    }
    if (n == -EAGAIN) return -EAGAIN;  // nothing moved: file_wait(), then again
    if (n < 0) {
      if (done > 0) break;
      return n;
    }
    // A short RWF_NOWAIT read is either the file's end or a page not cached: the next read tells.
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  f->pos += static_cast<off64_t>(done);
  return static_cast<ssize_t>(done);
}

namespace {

// kernel: splice_direct_to_actor()'s next round, copy_splice_read() for an O_DIRECT file: one read
// of min(end - round, kStage) bytes at the round's offset into page-aligned memory. The bytes of
// the last round not pulled yet (from pos) move to just before it, in the same memory (allocated
// at the first round). A read of 0 is the file's end; an error ends the transfer
// after the bytes before it, or is the result when there are none.
int direct_round(FileSource* f) {
  constexpr size_t kA = FileSource::kAlign, kStage = FileSource::kStage;
  const off64_t staged_end = f->stage_pos + static_cast<off64_t>(f->stage_len);
  const size_t tail = f->stage_data != nullptr && f->pos >= f->stage_pos && f->pos < staged_end
                          ? static_cast<size_t>(staged_end - f->pos)
                          : 0;
  const off64_t from = f->pos;  // the round begins at from + tail: where the last one ended
  const size_t round =
      static_cast<size_t>(std::clamp<off64_t>(f->end - from - static_cast<off64_t>(tail), 0, kStage));
  const size_t lead = (tail + kA - 1) / kA * kA;
  // The stage is kept when it holds the lead and a round; else (the first round) it is replaced by
  // room for a lead of a whole round and a round, which the tail is moved into.
  const bool keep = f->stage_cap >= lead + kStage + kA;
  std::unique_ptr<char[]> fresh;
  size_t fresh_cap = 0;
  char* const base = keep ? page_aligned(&f->stage, &f->stage_cap, lead + kStage)
                          : page_aligned(&fresh, &fresh_cap, std::max(lead, kStage) + kStage);
  if (base == nullptr) return -ENOMEM;
  char* const rd = base + lead;
  if (tail > 0) std::memmove(rd - tail, f->stage_data + (f->pos - f->stage_pos), tail);
  if (!keep) {
    f->stage = std::move(fresh);
    f->stage_cap = fresh_cap;
  }
  f->stage_data = rd - tail;
  f->stage_pos = from;
  f->stage_len = tail;
  f->stage_end = false;
  for (;;) {
    ssize_t n = round > 0 ? f->read(f->fd, rd, round, from + static_cast<off64_t>(tail), 0) : 0;
    if (n == -EINTR && f->restarts != nullptr && f->restarts()) continue;
    if (n < 0 && tail == 0) return static_cast<int>(n);
    if (n <= 0) {
      f->stage_end = true;
    } else {
      f->stage_len += static_cast<size_t>(n);
    }
    return 0;
  }
}

}  // namespace

char* page_aligned(std::unique_ptr<char[]>* mem, size_t* cap, size_t size) {
  constexpr size_t kA = FileSource::kAlign;
  if (*mem == nullptr || *cap < size + kA) {
    mem->reset(new (std::nothrow) char[size + kA]);
    *cap = *mem != nullptr ? size + kA : 0;
    if (*mem == nullptr) return nullptr;
  }
  const auto base = reinterpret_cast<uintptr_t>(mem->get());
  return mem->get() + (kA - base % kA) % kA;
}

int file_wait(void* ctx) {
  auto* f = static_cast<FileSource*>(ctx);
  if (f->direct) return direct_round(f);
  const size_t cap = std::max(FileSource::kStage, f->want);
  if (f->stage_cap < cap) {
    f->stage.reset(new (std::nothrow) char[cap]);
    f->stage_cap = f->stage != nullptr ? cap : 0;
    if (f->stage == nullptr) return -ENOMEM;
  }
  f->stage_data = f->stage.get();
  f->stage_pos = f->pos;
  f->stage_len = 0;
  f->stage_end = false;
  while (f->stage_len < cap) {
    ssize_t n = f->read(f->fd, f->stage_data + f->stage_len, cap - f->stage_len,
                        f->stage_pos + static_cast<off64_t>(f->stage_len), 0);
    if (n == -EINTR && f->restarts != nullptr && f->restarts()) continue;
    if (n < 0) {
      if (f->stage_len == 0) return static_cast<int>(n);
      // kernel: filemap_read() gives what it copied before the folio that failed, and
      // splice_direct_to_actor() returns the bytes sent before a read that fails (the error only
      // when nothing went): the transfer ends after what was staged, as at the file's end, and
      // the next call, reading here first, returns the error. (Before, the staged part was sent,
      // the next pull found the failed page uncached, -EAGAIN, and this read the same bytes
      // again, for ever.)
      f->stage_end = true;
      break;
    }
    if (n == 0) {
      f->stage_end = true;
      break;
    }
    f->stage_len += static_cast<size_t>(n);
    if (f->stage_len >= f->want) break;  // enough for the next pull; no more waiting on the file
  }
  return 0;
}

}  // namespace xmit
