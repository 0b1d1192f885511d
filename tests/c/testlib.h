/*
 * testlib.h - what the C tests share: check macros and a forked "recorder"
 * SMTP server that logs every command line it receives.
 *
 * Header-only, everything static: tests/c/run.sh and tests/sanitizers.sh
 * build each .c file in tests/c as a program of its own, so there is no
 * helper object to link in.
 * The functions are `static inline` so that a test using only part of this
 * file still compiles under -Wall -Wextra -Werror (no "defined but not
 * used"), as C99 and as C++.
 *
 * Define _POSIX_C_SOURCE before including anything (fork, pipe, alarm and
 * the sockets need it).
 */
#ifndef SMTPC_TESTLIB_H
#define SMTPC_TESTLIB_H

#ifndef _POSIX_C_SOURCE
#error "define _POSIX_C_SOURCE (200809L) before including testlib.h"
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- checks: each counts one in n_checks, a failure prints file:line and
 * exits 1 (the tests' summary line reports n_checks). --------------------- */

static int n_checks;

#define CHECK(cond)                                                          \
    do {                                                                     \
        n_checks++;                                                          \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

#define CHECK_INT(got, want)                                                 \
    do {                                                                     \
        long got_ = (long)(got), want_ = (long)(want);                       \
        n_checks++;                                                          \
        if (got_ != want_) {                                                 \
            fprintf(stderr, "%s:%d: %s is %ld, wanted %s (%ld)\n", __FILE__, \
                    __LINE__, #got, got_, #want, want_);                     \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

/* A NULL `got` fails the check instead of crashing in strcmp. */
#define CHECK_STR(got, want)                                                 \
    do {                                                                     \
        const char *got_ = (got), *want_ = (want);                           \
        n_checks++;                                                          \
        if (got_ == NULL || strcmp(got_, want_) != 0) {                      \
            fprintf(stderr, "%s:%d: %s is \"%s\", wanted \"%s\"\n", __FILE__, \
                    __LINE__, #got, got_ ? got_ : "(null)", want_);          \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

/* ---- sockets ------------------------------------------------------------ */

/* A TCP socket bound to 127.0.0.1 on a port the kernel picks (stored in
 * *port). Not listening yet: the caller listens, or closes it to get a
 * port where connections are refused. */
static inline int bind_loopback(uint16_t *port)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    CHECK(fd >= 0);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    CHECK(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
    *port = ntohs(addr.sin_port);
    return fd;
}

/* ---- the recorder server's side of a conversation ----------------------- */

/* Writes all of `text`; the server child gives up (exit 3) if it cannot. */
static inline void send_text(int fd, const char *text)
{
    size_t len = strlen(text);
    while (len > 0) {
        ssize_t n = write(fd, text, len);
        if (n <= 0)
            _exit(3);
        text += n;
        len -= (size_t)n;
    }
}

/* Reads one line up to "\n", drops "\r\n"; returns 0 at EOF. Byte by byte:
 * slow but simple, and a CR/LF smuggled into a command shows up as an
 * extra line. */
static inline int read_line(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    char c;
    for (;;) {
        ssize_t n = read(fd, &c, 1);
        if (n <= 0)
            return 0;
        if (c == '\n')
            break;
        if (len + 1 < cap)
            buf[len++] = c;
    }
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    buf[len] = '\0';
    return 1;
}

static inline int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The next command of a conversation, recorded: reads a line from `conn`,
 * upper-cases its first word and writes it to `log_fd`. Verbs are
 * case-insensitive (the library sends smtplib's "mail FROM:"), so matching
 * and the logs see one spelling. Returns 0 when the client hung up. */
static inline int next_command(int conn, int log_fd, char *line, size_t cap)
{
    size_t i;

    if (!read_line(conn, line, cap))
        return 0;
    for (i = 0; line[i] != '\0' && line[i] != ' '; i++)
        if (line[i] >= 'a' && line[i] <= 'z')
            line[i] = (char)(line[i] - 'a' + 'A');
    send_text(log_fd, line);
    send_text(log_fd, "\n");
    return 1;
}

/* After "354": consumes the message up to its "." line (or EOF), unlogged;
 * the caller logs a marker and replies. `line` is scratch space. */
static inline void skip_message(int conn, char *line, size_t cap)
{
    while (read_line(conn, line, cap) && strcmp(line, ".") != 0)
        ;
}

/* ---- the recorder server ------------------------------------------------ */

/* One connection's script: greet, answer and log via next_command until
 * QUIT or EOF. Runs in the forked child; log_fd is the pipe to the test. */
typedef void (*converse_fn)(int conn, int log_fd);

struct recorder {
    uint16_t port;
    pid_t pid;
    int log_fd; /* read end: one line per command the server received */
};

/* Forks a server on 127.0.0.1:<r->port> that takes `conns` connections one
 * after another, each run by `converse`. Fork before the library allocates
 * anything: the child holds a copy of the heap, and under valgrind it would
 * report the sessions it cannot see as leaked when it exits. */
static inline void recorder_start(struct recorder *r, int conns, converse_fn converse)
{
    int fd, pipefd[2];

    fd = bind_loopback(&r->port);
    CHECK(listen(fd, 4) == 0);
    CHECK(pipe(pipefd) == 0);
    fflush(NULL); /* the child must not flush the parent's buffered output */

    r->pid = fork();
    CHECK(r->pid >= 0);
    if (r->pid == 0) {
        int i;
        alarm(60); /* never outlive a test that died */
        close(pipefd[0]);
        for (i = 0; i < conns; i++) {
            int conn = accept(fd, NULL, NULL);
            if (conn < 0)
                _exit(2);
            if (i + 1 == conns)
                close(fd); /* the last one: later connects are refused */
            converse(conn, pipefd[1]);
            close(conn);
        }
        close(pipefd[1]);
        _exit(0);
    }
    close(fd);
    close(pipefd[1]);
    r->log_fd = pipefd[0];
}

/* Waits for the server to finish; returns what it logged (malloc'd). */
static inline char *recorder_finish(struct recorder *r)
{
    size_t cap = 4096, len = 0;
    char *buf = (char *)malloc(cap);
    int status = 0;

    CHECK(buf != NULL);
    for (;;) {
        ssize_t n;
        if (len + 1 == cap) {
            char *bigger = (char *)realloc(buf, cap * 2);
            CHECK(bigger != NULL);
            buf = bigger;
            cap *= 2;
        }
        n = read(r->log_fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        CHECK(n >= 0);
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(r->log_fd);
    CHECK(waitpid(r->pid, &status, 0) == r->pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return buf;
}

#endif /* SMTPC_TESTLIB_H */
