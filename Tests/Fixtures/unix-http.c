/* unix-http SOCKET METHOD PATH: one HTTP/1.1 request (no body) over a unix socket, the whole
 * answer to stdout. For tests that talk to the engine API from inside a busybox container
 * (busybox's wget and nc have no unix sockets). Exit 2 when the socket can't be reached. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: unix-http SOCKET METHOD PATH\n");
        return 1;
    }
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (strlen(argv[1]) >= sizeof address.sun_path) return 1;
    strcpy(address.sun_path, argv[1]);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        perror("connect");
        return 2;
    }
    char request[4096];
    int n = snprintf(request, sizeof request, "%s %s HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n", argv[2], argv[3]);
    if (n <= 0 || n >= (int)sizeof request || write(fd, request, n) != n) return 1;
    char buffer[65536];
    ssize_t got;
    while ((got = read(fd, buffer, sizeof buffer)) > 0) fwrite(buffer, 1, got, stdout);
    return 0;
}
