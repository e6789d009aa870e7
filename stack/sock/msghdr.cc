// stack/sock/msghdr.cc — send-side msghdr/sendto argument import with Linux's errnos and order.
// kernel: __sys_sendto(), ___sys_sendmsg(), ____sys_sendmsg(), __copy_msghdr(), net/socket.c;
// import_iovec(), import_ubuf(), lib/iov_iter.c.
#include "stack/sock/msghdr.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/types.h>

#include <cstring>

namespace xmit {

// User memory the kernel would fault on (an unmapped page inside user space) cannot be told apart
// cheaply in-process, and probing it (mincore, process_vm_readv, a SIGSEGV-catching read) costs a
// syscall or a signal-handler dance per send. So these functions reject exactly what the kernel
// rejects by arithmetic (access_ok) plus NULL (never mapped: mmap_min_addr), and otherwise read
// the caller's msghdr, iovec array, address and control bytes directly: where the kernel would
// say -EFAULT for an unmapped one, the process takes SIGSEGV instead. Payload bytes are not read
// here: the kernel's -EFAULT for a bad iov_base comes at copy time (ip_generic_getfrag() →
// csum_and_copy_from_iter_full() fails), so the UDP layer reports it when its copy fails; a
// fault-tolerant copy primitive is future work.

bool access_ok(const void* ptr, size_t size, const SendArgsCtx& ctx) noexcept {
  // kernel: __access_ok(): sum = ptr + size; valid_user_address(sum) && sum >= ptr.
  uintptr_t p = reinterpret_cast<uintptr_t>(ptr);
  uintptr_t sum = p + size;
  return sum <= ctx.user_ptr_max && sum >= p;
}

int move_addr_to_kernel(const void* uaddr, int ulen, sockaddr_storage* kaddr,
                        const SendArgsCtx& ctx) noexcept {
  if (ulen < 0 || static_cast<size_t>(ulen) > sizeof(sockaddr_storage)) return -EINVAL;
  if (ulen == 0) return 0;
  // kernel: copy_from_user() → -EFAULT.
  if (uaddr == nullptr || !access_ok(uaddr, static_cast<size_t>(ulen), ctx)) return -EFAULT;
  // The common length as a constant-size copy (two moves): the variable-length one compiled to a
  // rep movsq whose start-up cost was half of copy_msghdr()'s samples.
  if (ulen == sizeof(sockaddr_in)) {
    std::memcpy(kaddr, uaddr, sizeof(sockaddr_in));
  } else {
    std::memcpy(kaddr, uaddr, static_cast<size_t>(ulen));
  }
  return 0;
}

int import_ubuf(const void* buf, size_t len, Kmsg* kmsg, const SendArgsCtx& ctx) noexcept {
  if (len > kMaxRwCount) len = kMaxRwCount;
  if (!access_ok(buf, len, ctx)) return -EFAULT;
  kmsg->iter_ubuf = true;
  kmsg->ubuf = iovec{const_cast<void*>(buf), len};
  kmsg->iov = nullptr;
  kmsg->nr_segs = 1;
  kmsg->count = len;
  return 0;
}

namespace {

// kernel: copy_iovec_from_user(), lib/iov_iter.c: user_access_begin() on the whole array
// (-EFAULT), then each iov_len read as ssize_t; a negative one: -EINVAL.
int copy_iovec_from_user(const iovec* uvec, size_t nr_segs, const SendArgsCtx& ctx) noexcept {
  if (uvec == nullptr || !access_ok(uvec, nr_segs * sizeof(iovec), ctx)) return -EFAULT;
  for (size_t seg = 0; seg < nr_segs; ++seg) {
    if (static_cast<ssize_t>(uvec[seg].iov_len) < 0) return -EINVAL;
  }
  return 0;
}

}  // namespace

int import_iovec(const iovec* uvec, size_t nr_segs, Kmsg* kmsg, const SendArgsCtx& ctx) noexcept {
  // kernel: __import_iovec_ubuf() for one segment.
  if (nr_segs == 1) {
    int err = copy_iovec_from_user(uvec, 1, ctx);
    if (err) return err;
    return import_ubuf(uvec[0].iov_base, uvec[0].iov_len, kmsg, ctx);
  }
  // kernel: iovec_from_user(): zero segments is fine (no read); too many is -EINVAL.
  if (nr_segs > kUioMaxIov) return -EINVAL;
  if (nr_segs > 0) {
    int err = copy_iovec_from_user(uvec, nr_segs, ctx);
    if (err) return err;
  }
  // kernel: __import_iovec(): "Linux caps all read/write calls to MAX_RW_COUNT, and avoids the
  // overflow case." access_ok() sees each segment's unclamped length.
  size_t total_len = 0;
  for (size_t seg = 0; seg < nr_segs; ++seg) {
    size_t len = uvec[seg].iov_len;
    if (!access_ok(uvec[seg].iov_base, len, ctx)) return -EFAULT;
    if (len > kMaxRwCount - total_len) len = kMaxRwCount - total_len;
    total_len += len;
  }
  kmsg->iter_ubuf = false;
  kmsg->iov = nr_segs > 0 ? uvec : nullptr;
  kmsg->nr_segs = nr_segs;
  kmsg->count = total_len;
  return 0;
}

int copy_msghdr(const msghdr* umsg, Kmsg* kmsg, const SendArgsCtx& ctx) noexcept {
  // kernel: __copy_msghdr(). msg_namelen is an int in struct user_msghdr.
  kmsg->msg_control = umsg->msg_control;
  kmsg->msg_controllen = umsg->msg_controllen;
  kmsg->msg_flags = static_cast<unsigned>(umsg->msg_flags);
  int namelen = static_cast<int>(umsg->msg_namelen);
  if (umsg->msg_name == nullptr) namelen = 0;
  if (namelen < 0) return -EINVAL;
  if (static_cast<size_t>(namelen) > sizeof(sockaddr_storage)) namelen = sizeof(sockaddr_storage);
  if (umsg->msg_name != nullptr && namelen != 0) {
    int err = move_addr_to_kernel(umsg->msg_name, namelen, &kmsg->address, ctx);
    if (err < 0) return err;
    kmsg->has_name = true;
    kmsg->msg_namelen = namelen;
  } else {
    kmsg->has_name = false;
    kmsg->msg_namelen = 0;
  }
  if (umsg->msg_iovlen > kUioMaxIov) return -EMSGSIZE;
  // kernel: copy_msghdr_from_user() → import_iovec(ITER_SOURCE, ...).
  return import_iovec(umsg->msg_iov, umsg->msg_iovlen, kmsg, ctx);
}

int sys_sendmsg_control(Kmsg* kmsg, unsigned flags, unsigned allowed_msghdr_flags,
                        const SendArgsCtx& ctx) noexcept {
  // kernel: ____sys_sendmsg().
  if (kmsg->msg_controllen > static_cast<size_t>(INT_MAX)) return -ENOBUFS;
  size_t ctl_len = kmsg->msg_controllen;
  if (ctl_len != 0) {
    if (ctl_len > kSysSendmsgCtlStack) {
      // kernel: sock_kmalloc(): (unsigned)size <= optmem_max && omem_alloc + size < optmem_max.
      if (ctl_len > static_cast<size_t>(ctx.optmem_max) ||
          static_cast<long>(ctx.sk_omem_alloc) + static_cast<long>(ctl_len) >= ctx.optmem_max)
        return -ENOBUFS;
    }
    // kernel: copy_from_user(ctl_buf, msg_control_user, ctl_len) → -EFAULT.
    if (kmsg->msg_control == nullptr || !access_ok(kmsg->msg_control, ctl_len, ctx)) return -EFAULT;
  }
  // kernel: flags |= (msg_sys->msg_flags & allowed_msghdr_flags); flags &= ~MSG_INTERNAL_SENDMSG_FLAGS.
  flags |= kmsg->msg_flags & allowed_msghdr_flags;
  kmsg->msg_flags = flags & ~kMsgInternalSendmsgFlags;
  return 0;
}

int sys_sendmsg_prepare(const msghdr* umsg, unsigned flags, Kmsg* kmsg,
                        const SendArgsCtx& ctx) noexcept {
  // kernel: __sys_sendmsg(..., forbid_cmsg_compat = true): before the fd is even looked up.
  if (flags & kMsgCmsgCompat) return -EINVAL;
  // kernel: copy_msghdr_from_user(): copy_from_user(&msg, umsg, sizeof(*umsg)).
  if (umsg == nullptr || !access_ok(umsg, sizeof(msghdr), ctx)) return -EFAULT;
  int err = copy_msghdr(umsg, kmsg, ctx);
  if (err) return err;
  // kernel: ___sys_sendmsg(sock, msg, &msg_sys, flags, NULL, 0): sendmsg admits no msg_flags bit.
  return sys_sendmsg_control(kmsg, flags, 0, ctx);
}

int sys_sendto_prepare(const void* buf, size_t len, unsigned flags, const sockaddr* addr,
                       int addr_len, Kmsg* kmsg, const SendArgsCtx& ctx) noexcept {
  int err = import_ubuf(buf, len, kmsg, ctx);
  if (err) return err;
  kmsg->has_name = false;
  kmsg->msg_namelen = 0;
  kmsg->msg_control = nullptr;
  kmsg->msg_controllen = 0;
  if (addr != nullptr) {
    err = move_addr_to_kernel(addr, addr_len, &kmsg->address, ctx);
    if (err < 0) return err;
    // An address of length 0 is still an address (msg_name set, msg_namelen 0).
    kmsg->has_name = true;
    kmsg->msg_namelen = addr_len;
  }
  kmsg->msg_flags = flags & ~kMsgInternalSendmsgFlags;
  return 0;
}

int sys_sendmmsg_flags(unsigned flags, unsigned i, unsigned vlen, unsigned* out) noexcept {
  if (flags & kMsgCmsgCompat) return -EINVAL;
  *out = (i + 1 == vlen) ? flags : (flags | kMsgBatch);
  return 0;
}

}  // namespace xmit
