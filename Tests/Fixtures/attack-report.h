// What the attack fixtures (ecid-jail, untrapped-attacks) share: one line per attempt,
// "ESCAPED name: why (error)" or "BLOCKED name: ...", counted in `escaped` for the summary the
// tests read, and the bytes a masked file shows.
#pragma once
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int escaped = 0;

static void report(int got_through, const char *name, const char *why, int err) {
    printf("%s %s: %s (%s)\n", got_through ? "ESCAPED" : "BLOCKED", name, why, err ? strerror(err) : "ok");
    fflush(stdout);
    if (got_through) escaped++;
}

// Bytes a masked file shows: none (a /dev/null bind), its real content once unmasked; -1 if
// unreadable.
static ssize_t content(const char *path) {
    char buf[256];
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    return n;
}
