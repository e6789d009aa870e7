// tests/e2e/signal_send.c — a send from a signal handler on the socket the interrupted code is
// sending on. Under xmit the handler may interrupt the stack with its lock held; the call must not
// wait for that lock (the kernel serves it). SIGALRM every 50 us while the main loop sends N
// datagrams "m"; the handler sends "h". Prints "sent M H" and exits 0.
//   signal_send ADDR PORT N
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int g_fd;
static volatile sig_atomic_t g_handler_sent;

static void on_alarm(int sig) {
  (void)sig;
  int saved = errno;
  if (send(g_fd, "h", 1, MSG_DONTWAIT) == 1) g_handler_sent++;
  errno = saved;
}

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2]))};
  inet_pton(AF_INET, argv[1], &to.sin_addr);
  int n = atoi(argv[3]);
  g_fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (g_fd < 0 || connect(g_fd, (struct sockaddr*)&to, sizeof to) != 0) return perror("socket"), 1;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  struct itimerval it = {{0, 50}, {0, 50}};
  setitimer(ITIMER_REAL, &it, NULL);
  int sent = 0;
  for (int i = 0; i < n; i++) {
    if (send(g_fd, "m", 1, 0) == 1) sent++;
    if (i % 50 == 49) {  // pace, so the receiver keeps up (interrupted sleeps just end early)
      struct timespec ts = {0, 200000};
      nanosleep(&ts, NULL);
    }
  }
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  printf("sent %d %d\n", sent, (int)g_handler_sent);
  return 0;
}
