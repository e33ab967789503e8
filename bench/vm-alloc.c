/* Allocates and touches N MiB (argv[1]), prints "allocated", holds it argv[2] seconds, exits.
 * Static, for a busybox container (bench/vm-laptop.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int c, char **v) {
  size_t mib = c > 1 ? strtoul(v[1], 0, 10) : 1024;
  unsigned hold = c > 2 ? atoi(v[2]) : 5;
  char *p = malloc(mib << 20);
  if (!p) { perror("malloc"); return 1; }
  for (size_t i = 0; i < (mib << 20); i += 4096) p[i] = (char)(i >> 12 | 1);
  printf("allocated %zu MiB\n", mib); fflush(stdout);
  sleep(hold);
  return 0;
}
