/* The task ABI for C, shared by the C examples: the input is all of stdin, the output is
 * what is written to stdout, a failure is a message on stderr and exit code 1 (the same
 * contract as `smartnodes_guest::main!` in Rust). */
#ifndef SMARTNODES_TASK_H
#define SMARTNODES_TASK_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Prints the message on stderr and ends the task with exit code 1. */
static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* Reads all of stdin into a new buffer (one spare byte, set to 0, after the input). The
 * sandbox reports the unread input's size as stdin's size, so one allocation is enough. */
static unsigned char *read_stdin(size_t *len) {
    struct stat st;
    size_t cap = 4096;
    if (fstat(0, &st) == 0 && st.st_size > 0) cap = (size_t)st.st_size + 1;
    unsigned char *buf = malloc(cap);
    size_t n = 0;
    for (;;) {
        if (buf == NULL) fail("out of memory reading the input");
        if (n + 1 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            continue;
        }
        ssize_t got = read(0, buf + n, cap - 1 - n);
        if (got < 0) fail("reading the input failed");
        if (got == 0) break;
        n += (size_t)got;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Writes the whole buffer to stdout. */
static void write_stdout(const void *data, size_t len) {
    const unsigned char *p = data;
    while (len > 0) {
        ssize_t put = write(1, p, len);
        if (put <= 0) fail("writing the output failed");
        p += put;
        len -= (size_t)put;
    }
}

#endif
