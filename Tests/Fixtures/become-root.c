// A setuid-root program of a container's image (a test fixture): it becomes root in every ID
// and runs `/bin/sh -c COMMAND` as root, which gets the bounding set at exec. The way a
// process that started as another user regains CAP_SYS_ADMIN when no-new-privileges is off.
// Build static, owned by root, mode 4755:  cc -static -O2 -o become-root become-root.c
#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: become-root COMMAND\n");
        return 2;
    }
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
        perror("become-root: setresuid");
        return 1;
    }
    execl("/bin/sh", "sh", "-c", argv[1], (char *)NULL);
    perror("become-root: exec /bin/sh");
    return 127;
}
