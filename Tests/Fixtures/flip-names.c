/* flip-names A B SECONDS: swaps the names A and B with renameat2(RENAME_EXCHANGE) as fast as it
 * can for SECONDS, then leaves them as they were at the start (an even number of swaps). The
 * race a container runs against the engine's own lookups of a path it can write. Test fixture. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: flip-names A B SECONDS\n");
        return 2;
    }
    time_t end = time(NULL) + atoi(argv[3]);
    unsigned long swaps = 0;
    while (time(NULL) < end || swaps % 2 != 0) {
        if (renameat2(-100 /* AT_FDCWD */, argv[1], -100, argv[2], 2 /* RENAME_EXCHANGE */) != 0) {
            perror("renameat2");
            return 1;
        }
        swaps++;
    }
    printf("%lu swaps\n", swaps);
    return 0;
}
