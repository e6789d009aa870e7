/* tests/e2e/ctor_early.c — a shared library whose constructor uses sockets. The test program links
 * it, so the loader runs this constructor before libxmit.so's own: calls that arrive before xmit
 * initialised must still reach the kernel correctly. */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int early_result = -1;

__attribute__((constructor)) static void early(void) {
  int sv[2];
  char buf[8] = {0};
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return;
  if (send(sv[0], "early", 5, 0) == 5 && recv(sv[1], buf, sizeof buf, 0) == 5 && memcmp(buf, "early", 5) == 0)
    early_result = 0;
  close(sv[0]);
  close(sv[1]);
}
