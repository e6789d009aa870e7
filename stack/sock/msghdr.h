// stack/sock/msghdr.h — the socket layer's send-side argument checks: a user msghdr (or send/sendto
// arguments) becomes a Kmsg, the kernel's struct msghdr, with Linux's errnos and in Linux's order.
// kernel: __sys_sendto(), __sys_sendmsg(), ____sys_sendmsg(), __copy_msghdr(), net/socket.c; import_iovec(), lib/iov_iter.c
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <climits>
#include <cstddef>
#include <cstdint>

namespace xmit {

// kernel: MAX_RW_COUNT, include/linux/fs.h (INT_MAX & PAGE_MASK with 4 KiB pages).
inline constexpr size_t kMaxRwCount = static_cast<size_t>(INT_MAX) & ~static_cast<size_t>(4095);
// kernel: UIO_MAXIOV, include/uapi/linux/uio.h.
inline constexpr size_t kUioMaxIov = 1024;
// kernel: the on-stack control buffer of ____sys_sendmsg(): sizeof(struct cmsghdr) + 20.
// Longer control data goes through sock_kmalloc(), which fails (-ENOBUFS) past optmem_max.
inline constexpr size_t kSysSendmsgCtlStack = sizeof(cmsghdr) + 20;

// Flags user space may not pass; the kernel clears them silently on every send entry.
// kernel: MSG_INTERNAL_SENDMSG_FLAGS, include/linux/socket.h (MSG_SPLICE_PAGES |
// MSG_SENDPAGE_NOPOLICY | MSG_SENDPAGE_DECRYPTED).
inline constexpr unsigned kMsgSplicePages = 0x8000000;
inline constexpr unsigned kMsgSendpageNopolicy = 0x10000;
inline constexpr unsigned kMsgSendpageDecrypted = 0x100000;
inline constexpr unsigned kMsgInternalSendmsgFlags =
    kMsgSplicePages | kMsgSendpageNopolicy | kMsgSendpageDecrypted;
inline constexpr unsigned kMsgCmsgCompat = 0x80000000u;
inline constexpr unsigned kMsgBatch = 0x40000;
inline constexpr unsigned kMsgEor = 0x80;

// What the checks need to know about the process and socket (a narrow context; the caller fills
// it once, not per call).
struct SendArgsCtx {
  // kernel: USER_PTR_MAX / TASK_SIZE_MAX, arch/x86: the highest user address access_ok() accepts.
  // x86-64 with 4-level paging; a 5-level (la57) kernel raises it to (1 << 56) - 4096.
  uintptr_t user_ptr_max = (uintptr_t{1} << 47) - 4096;
  // kernel: net.core.optmem_max (sysctl_optmem_max) and sk->sk_omem_alloc: sock_kmalloc() of the
  // control buffer fails unless size <= optmem_max && omem_alloc + size < optmem_max.
  int optmem_max = 131072;
  int sk_omem_alloc = 0;
};

// The kernel's struct msghdr after import (include/linux/socket.h), as plain data. Pointers still
// name user memory: the address is copied (as move_addr_to_kernel() does), the payload and the
// control bytes are not.
struct Kmsg {
  // msg_name: copied into `address` (up to msg_namelen bytes); has_name says it is present.
  sockaddr_storage address;
  bool has_name = false;
  int msg_namelen = 0;
  // msg_iter: either a user iovec array (ITER_IOVEC) or one buffer (ITER_UBUF: send/sendto and a
  // one-segment sendmsg). `count` is msg_data_left(): the total, clamped to kMaxRwCount; a copier
  // stops after `count` bytes (the kernel shortens the segment where the clamp falls).
  const iovec* iov = nullptr;
  size_t nr_segs = 0;
  iovec ubuf{};
  bool iter_ubuf = false;
  size_t count = 0;
  // msg_control/msg_controllen: user memory, read in place by the cmsg parsers.
  const void* msg_control = nullptr;
  size_t msg_controllen = 0;
  // msg_flags: after copy_msghdr() the user's msg_flags field; after sys_sendmsg_control() (and
  // sys_sendto_prepare()) the send flags, sanitised: what udp_sendmsg() reads as msg->msg_flags.
  unsigned msg_flags = 0;

  const sockaddr* name() const { return has_name ? reinterpret_cast<const sockaddr*>(&address) : nullptr; }
  const iovec* segs() const { return iter_ubuf ? &ubuf : iov; }
};

// kernel: access_ok() on x86-64 (__access_ok, arch/x86/include/asm/uaccess_64.h): pure address
// arithmetic, no probing. Addresses that pass but are unmapped fault only at copy time.
bool access_ok(const void* ptr, size_t size, const SendArgsCtx& ctx) noexcept;

// kernel: move_addr_to_kernel(), net/socket.c. ulen < 0 or > sizeof(sockaddr_storage): -EINVAL;
// ulen == 0 copies nothing; an unreadable address: -EFAULT (only detected by access_ok here).
int move_addr_to_kernel(const void* uaddr, int ulen, sockaddr_storage* kaddr,
                        const SendArgsCtx& ctx) noexcept;

// kernel: import_ubuf(), lib/iov_iter.c: len clamps to MAX_RW_COUNT, then access_ok: -EFAULT.
int import_ubuf(const void* buf, size_t len, Kmsg* kmsg, const SendArgsCtx& ctx) noexcept;

// kernel: import_iovec() → __import_iovec(), lib/iov_iter.c. One segment takes the ITER_UBUF
// path (read it, len < 0 as ssize_t: -EINVAL, then import_ubuf). Several: every segment is read
// first (a NULL or out-of-range array: -EFAULT; any iov_len < 0 as ssize_t: -EINVAL), then each
// segment gets access_ok(base, its unclamped len) (-EFAULT) and the total is clamped to
// MAX_RW_COUNT. nr_segs > UIO_MAXIOV: -EINVAL (callers check -EMSGSIZE first).
int import_iovec(const iovec* uvec, size_t nr_segs, Kmsg* kmsg, const SendArgsCtx& ctx) noexcept;

// kernel: __copy_msghdr() + import_iovec() = copy_msghdr_from_user(), net/socket.c, in order:
//   msg_name NULL → no address; msg_namelen < 0 (as int) → -EINVAL; msg_namelen >
//   sizeof(sockaddr_storage) is CLAMPED to it (sendto says -EINVAL instead); the address copy
//   (-EFAULT); msg_iovlen > UIO_MAXIOV → -EMSGSIZE; then import_iovec().
int copy_msghdr(const msghdr* umsg, Kmsg* kmsg, const SendArgsCtx& ctx) noexcept;

// kernel: the control part of ____sys_sendmsg(), net/socket.c: msg_controllen > INT_MAX →
// -ENOBUFS; longer than the on-stack buffer (36 bytes) and sock_kmalloc() refuses (optmem_max) →
// -ENOBUFS; the copy of the control bytes (NULL or outside user space) → -EFAULT. Then the flags:
// flags | (the user's msg_flags & allowed_msghdr_flags: 0 for sendmsg, MSG_EOR for sendmmsg),
// minus MSG_INTERNAL_SENDMSG_FLAGS, become kmsg->msg_flags.
int sys_sendmsg_control(Kmsg* kmsg, unsigned flags, unsigned allowed_msghdr_flags,
                        const SendArgsCtx& ctx) noexcept;

// kernel: __sys_sendmsg(fd, msg, flags, forbid_cmsg_compat=true) → ___sys_sendmsg(), net/socket.c:
// the whole sendmsg(2) entry up to sock_sendmsg(): MSG_CMSG_COMPAT → -EINVAL (before anything
// else), copy_msghdr(), sys_sendmsg_control(). A NULL msghdr → -EFAULT. The caller adds
// MSG_DONTWAIT for an O_NONBLOCK file.
int sys_sendmsg_prepare(const msghdr* umsg, unsigned flags, Kmsg* kmsg,
                        const SendArgsCtx& ctx) noexcept;

// kernel: __sys_sendto(), net/socket.c (send(2) is sendto with addr NULL): import_ubuf(buf,
// len) first; then, if addr != NULL, move_addr_to_kernel(addr, addr_len): addr_len < 0 or > 128 →
// -EINVAL (sendmsg clamps instead), addr_len 0 → an address of length 0 (UDP then says -EINVAL,
// where sendmsg drops the name and says -EDESTADDRREQ). addr NULL: addr_len is ignored.
// MSG_CMSG_COMPAT is NOT rejected here (only sendmsg/sendmmsg do); internal flags are cleared.
// NOTE: preload/interpose.cc turns send/sendto/write into a msghdr for Socket::sendmsg(), so
// today these sendto-only errnos cannot be reached through it; it needs a sendto entry.
int sys_sendto_prepare(const void* buf, size_t len, unsigned flags, const sockaddr* addr,
                       int addr_len, Kmsg* kmsg, const SendArgsCtx& ctx) noexcept;

// kernel: __sys_sendmmsg(), net/socket.c: the flags ___sys_sendmsg() gets for datagram i of
// vlen (vlen already clamped to UIO_MAXIOV): MSG_CMSG_COMPAT → -EINVAL; MSG_BATCH on all but the
// last. (Each datagram's msg_flags may add MSG_EOR: pass kMsgEor as allowed_msghdr_flags.)
int sys_sendmmsg_flags(unsigned flags, unsigned i, unsigned vlen, unsigned* out) noexcept;

}  // namespace xmit
