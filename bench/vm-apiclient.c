/* bench helper: N sequential HTTP GETs over a unix socket, a new connection each (like the
 * docker CLI); prints the mean and median latency in microseconds. Built static so it also
 * runs in a busybox container inside the VM. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long long now_us(void) {
  struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}
static int cmp(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b; return (x > y) - (x < y);
}
int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: %s SOCKET PATH N\n", argv[0]); return 2; }
  int n = atoi(argv[3]), fails = 0;
  long long *lat = calloc(n, sizeof *lat), sum = 0;
  char req[512], buf[65536];
  snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n", argv[2]);
  for (int i = 0; i < n; i++) {
    long long t0 = now_us();
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { fails++; close(fd); continue; }
    if (write(fd, req, strlen(req)) < 0) { fails++; close(fd); continue; }
    ssize_t r, tot = 0; int ok = 0;
    while ((r = read(fd, buf, sizeof buf)) > 0) { if (tot == 0 && !strncmp(buf, "HTTP/1.1 200", 12)) ok = 1; tot += r; }
    close(fd);
    if (!ok) fails++;
    lat[i] = now_us() - t0; sum += lat[i];
  }
  qsort(lat, n, sizeof *lat, cmp);
  printf("n=%d mean_us=%lld median_us=%lld p99_us=%lld failures=%d\n", n, sum / n, lat[n / 2], lat[n * 99 / 100], fails);
  return 0;
}
