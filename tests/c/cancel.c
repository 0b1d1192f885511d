/*
 * cancel.c - smtp_session_cancel from another thread, against a server that
 * never answers (a listening socket nobody accepts from: the connect
 * completes, the greeting never comes).
 *
 * For each of N rounds, a worker thread calls smtp_session_connect (30 s
 * timeout) while the main thread sleeps 50 ms, then cancels. The connect
 * must return SMTPC_E_CANCELLED within 100 ms of the cancel, the handle
 * must report no connection, and a cancel with no call in flight must make
 * the next call return SMTPC_E_CANCELLED at once. tests/c/run.sh runs it
 * plainly and under valgrind; tests/sanitizers.sh under ASan+UBSan,
 * helgrind and ThreadSanitizer.
 *
 *   cancel [ROUNDS]   (default 10)
 * Last line: "cancel: N checks passed".
 */
#define _POSIX_C_SOURCE 200809L

#include <smtpc.h>

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "testlib.h"

struct job {
    smtp_session *s;
    uint16_t port;
    int rc;
    struct timespec returned;
};

static double seconds_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void *worker(void *arg)
{
    struct job *j = (struct job *)arg;
    char reply[128];
    j->rc = smtp_session_connect(j->s, "127.0.0.1", j->port, reply, sizeof reply);
    clock_gettime(CLOCK_MONOTONIC, &j->returned);
    return NULL;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 10;
    uint16_t port;
    int listener = bind_loopback(&port);
    double worst = 0;
    int i;

    CHECK(listen(listener, 64) == 0);
    for (i = 0; i < rounds; i++) {
        struct job j;
        pthread_t t;
        struct timespec pause = { 0, 50 * 1000 * 1000 }, cancelled;
        double late;

        j.s = smtp_session_new();
        j.port = port;
        j.rc = 0;
        CHECK(j.s != NULL);
        CHECK_INT(smtp_session_set_timeout_ms(j.s, 30000), SMTPC_OK);
        CHECK(pthread_create(&t, NULL, worker, &j) == 0);
        nanosleep(&pause, NULL);
        clock_gettime(CLOCK_MONOTONIC, &cancelled);
        CHECK_INT(smtp_session_cancel(j.s), SMTPC_OK);
        CHECK(pthread_join(t, NULL) == 0);
        CHECK_INT(j.rc, SMTPC_E_CANCELLED);
        late = seconds_between(&cancelled, &j.returned);
        if (late > worst)
            worst = late;
        CHECK(late < 0.100);
        CHECK_INT(smtp_session_is_connected(j.s), 0);
        /* The handle is usable: a cancel with nothing in flight stops the
         * next call at once, and only that one. */
        CHECK_INT(smtp_session_cancel(j.s), SMTPC_OK);
        CHECK_INT(smtp_session_noop(j.s, NULL, 0), SMTPC_E_CANCELLED);
        CHECK_INT(smtp_session_noop(j.s, NULL, 0), SMTPC_E_STATE);
        smtp_session_free(j.s);
    }
    close(listener);
    printf("cancel: %d rounds, slowest return %.1f ms after the cancel\n", rounds,
           worst * 1000);
    printf("cancel: %d checks passed\n", n_checks);
    return 0;
}
