// preload/splice.h — sendfile() and splice() with an offloaded socket at one end: the bytes go
// through the stack's connection, not the kernel shadow socket behind the fd. Kernel counterparts:
// do_sendfile() (fs/read_write.c), __do_splice()/do_splice(), splice_to_socket(),
// splice_file_to_pipe() (fs/splice.c), tcp_splice_read() (net/ipv4/tcp.c).
// Each returns the count moved or -errno (interpose.cc turns that into errno).
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include "stack/sock/socket.h"

namespace xmit {

// sendfile(out_fd = an offloaded socket `s`, in_fd, offset, count).
ssize_t sendfile_to_socket(Socket* s, int out_fd, int in_fd, off64_t* offset, size_t count) noexcept;

// splice(fd_in, off_in, fd_out, off_out, len, flags) where fd_in is the offloaded socket `in` or
// fd_out the offloaded socket `out` (either may be nullptr).
ssize_t splice_socket(Socket* in, int fd_in, loff_t* off_in, Socket* out, int fd_out, loff_t* off_out, size_t len,
                      unsigned int flags) noexcept;

}  // namespace xmit
