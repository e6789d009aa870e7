/* tests/e2e/ctor_signal.c — socket calls from a library constructor that runs before xmit's, from
 * the program's own constructor, and from a signal handler interrupting socket calls in main. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

extern int early_result;
static int ctor_result = -1;
static int hsv[2];
static volatile sig_atomic_t handled, handler_errors;

__attribute__((constructor)) static void program_ctor(void) {
  int sv[2];
  char buf[4];
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0) return;
  if (sendto(sv[0], "ctor", 4, 0, NULL, 0) == 4 && read(sv[1], buf, 4) == 4 && memcmp(buf, "ctor", 4) == 0)
    ctor_result = 0;
  close(sv[0]);
  close(sv[1]);
}

static void on_alarm(int sig) {
  (void)sig;
  int saved = errno;
  char c = 's';
  if (send(hsv[0], &c, 1, MSG_DONTWAIT) != 1 || recv(hsv[1], &c, 1, MSG_DONTWAIT) != 1 || c != 's')
    handler_errors++;
  handled++;
  errno = saved;
}

int main(void) {
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, hsv) != 0) return 2;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  struct itimerval it = {{0, 2000}, {0, 2000}};  /* every 2 ms */
  setitimer(ITIMER_REAL, &it, NULL);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 2;
  long moved = 0;
  char buf[256];
  memset(buf, 'm', sizeof buf);
  while (handled < 50) {  /* socket traffic in main while signals keep interrupting it */
    if (write(sv[0], buf, sizeof buf) != (ssize_t)sizeof buf) return 3;
    size_t got = 0;
    while (got < sizeof buf) {
      ssize_t r = read(sv[1], buf + got, sizeof buf - got);
      if (r <= 0) return 4;
      got += (size_t)r;
    }
    moved += (long)sizeof buf;
  }
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  printf("early constructor: %s\nprogram constructor: %s\nsignal handler: %s\n",
         early_result == 0 ? "ok" : "FAILED", ctor_result == 0 ? "ok" : "FAILED",
         handler_errors == 0 ? "ok" : "FAILED");
  return (early_result == 0 && ctor_result == 0 && handler_errors == 0 && moved > 0) ? 0 : 1;
}
