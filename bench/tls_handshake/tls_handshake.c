/*
 * tls_handshake.c - the cost of one STARTTLS with libsmtpc, for
 * bench/tls_handshake.sh. Linked against whichever libsmtpc.so the loader
 * finds (LD_LIBRARY_PATH), so one binary measures two builds of the library.
 *
 *   tls_handshake MODE HOST PORT CAFILE N [fresh]
 *
 * MODE plain: connect, EHLO, QUIT; starttls: connect, EHLO, STARTTLS (CA
 * file given, verified), EHLO, QUIT. One session reconnects N times, or
 * with "fresh" a new session per connection. One warm-up connection runs
 * before the clock starts. Prints "n=N cpu_s=USER+SYS wall_s=WALL".
 */
#define _POSIX_C_SOURCE 200809L

#include <smtpc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(smtp_session *s, const char *what, int code)
{
    char err[512];
    smtp_session_last_error(s, err, sizeof err);
    fprintf(stderr, "tls_handshake: %s: %d (%s)\n", what, code, err);
    exit(1);
}

static smtp_session *new_session(const char *ca)
{
    smtp_session *s = smtp_session_new();
    int rc;
    if (!s) {
        fprintf(stderr, "tls_handshake: out of memory\n");
        exit(1);
    }
    smtp_session_set_timeout_ms(s, 20000);
    if ((rc = smtp_session_set_ca_file(s, ca)) != SMTPC_OK)
        fail(s, "set_ca_file", rc);
    return s;
}

static void one(smtp_session *s, const char *host, int port, int tls)
{
    int rc;
    if ((rc = smtp_session_connect(s, host, (uint16_t)port, NULL, 0)) != 220)
        fail(s, "connect", rc);
    if ((rc = smtp_session_ehlo(s, NULL, NULL, 0)) != 250)
        fail(s, "ehlo", rc);
    if (tls) {
        if ((rc = smtp_session_starttls(s, NULL, 0)) != 220)
            fail(s, "starttls", rc);
        if ((rc = smtp_session_ehlo(s, NULL, NULL, 0)) != 250)
            fail(s, "ehlo after starttls", rc);
    }
    if ((rc = smtp_session_quit(s, NULL, 0)) != 221)
        fail(s, "quit", rc);
}

int main(int argc, char **argv)
{
    const char *mode, *host, *ca;
    int port, n, i, tls, fresh;
    double c0, w0;
    smtp_session *s;

    if (argc < 6) {
        fprintf(stderr, "usage: %s plain|starttls HOST PORT CAFILE N [fresh]\n", argv[0]);
        return 2;
    }
    mode = argv[1];
    host = argv[2];
    port = atoi(argv[3]);
    ca = argv[4];
    n = atoi(argv[5]);
    fresh = argc > 6 && strcmp(argv[6], "fresh") == 0;
    tls = strcmp(mode, "starttls") == 0;

    s = new_session(ca);
    one(s, host, port, tls); /* warm-up */
    c0 = cpu_now();
    w0 = wall_now();
    for (i = 0; i < n; i++) {
        if (fresh) {
            smtp_session_free(s);
            s = new_session(ca);
        }
        one(s, host, port, tls);
    }
    printf("n=%d cpu_s=%.6f wall_s=%.6f\n", n, cpu_now() - c0, wall_now() - w0);
    smtp_session_free(s);
    return 0;
}
