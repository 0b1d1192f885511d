/*
 * threads.c - many sessions at once through the C ABI.
 *
 *   threads PORT [THREADS [MESSAGES]]     (defaults: 64 threads, 100 each)
 *
 * Starts THREADS pthreads; each creates its own smtp_session, connects to
 * 127.0.0.1:PORT (an smtp-sink, say), sends MESSAGES messages with
 * smtp_session_sendmail over that one connection, QUITs and frees the
 * handle. Threads share nothing but the library: every handle, buffer and
 * counter is the thread's own, and the totals are summed after the joins,
 * so a data race reported by helgrind or ThreadSanitizer is the library's.
 *
 * Prints "threads: T x M = N messages, K accepted, F failed"; exits 1 if
 * any message was not answered 250 (or connect/QUIT failed), 2 on usage
 * errors. It needs a server: tests/sanitizers.sh runs it against smtp-sink
 * (tests/c/run.sh only compiles it).
 */
#define _POSIX_C_SOURCE 200809L

#include <smtpc.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct worker {
    pthread_t tid;
    int index;
    uint16_t port;
    long messages;
    long accepted;       /* answered 250, with the recipient's 250 */
    long failed;         /* everything else */
    int quit_failed;     /* QUIT was not answered 221 */
    char first_error[256];
};

static void note(struct worker *w, const char *what, int code, smtp_session *s)
{
    char detail[160];
    w->failed++;
    if (w->first_error[0] != '\0')
        return;
    detail[0] = '\0';
    if (s != NULL && code < 0)
        smtp_session_last_error(s, detail, sizeof detail);
    else if (s != NULL)
        smtp_session_last_reply(s, detail, sizeof detail);
    snprintf(w->first_error, sizeof w->first_error, "thread %d: %s: %d (%s) %s", w->index,
             what, code, smtpc_strerror(code), detail);
}

static void *run(void *arg)
{
    struct worker *w = (struct worker *)arg;
    char reply[256], from[64], to_addr[64], msg[256];
    const char *to[1];
    smtp_session *s;
    long i;
    int rc;

    s = smtp_session_new();
    if (s == NULL) {
        note(w, "smtp_session_new", SMTPC_E_NULL, NULL);
        w->failed += w->messages - 1;
        return NULL;
    }
    smtp_session_set_timeout_ms(s, 60000);
    snprintf(from, sizeof from, "thread%d@example.org", w->index);
    snprintf(to_addr, sizeof to_addr, "rcpt%d@example.org", w->index);
    to[0] = to_addr;

    rc = smtp_session_connect(s, "127.0.0.1", w->port, reply, sizeof reply);
    if (rc != 220) {
        note(w, "connect", rc, s);
        w->failed += w->messages - 1;
        smtp_session_free(s);
        return NULL;
    }
    for (i = 0; i < w->messages; i++) {
        int len = snprintf(msg, sizeof msg,
                           "From: <%s>\r\nTo: <%s>\r\nSubject: thread %d message %ld\r\n\r\n"
                           "body %ld\r\n.leading dot\r\n",
                           from, to_addr, w->index, i, i);
        rc = smtp_session_sendmail(s, from, to, 1, msg, (size_t)len, reply, sizeof reply);
        if (rc == 250 && smtp_session_rcpt_count(s) == 1 &&
            smtp_session_rcpt_code(s, 0, NULL, 0) == 250)
            w->accepted++;
        else
            note(w, "sendmail", rc, s);
    }
    rc = smtp_session_quit(s, reply, sizeof reply);
    if (rc != 221) {
        w->quit_failed = 1;
        fprintf(stderr, "thread %d: quit: %d (%s)\n", w->index, rc, smtpc_strerror(rc));
    }
    smtp_session_free(s);
    return NULL;
}

static long parse(const char *text, const char *what, long max)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v < 1 || v > max) {
        fprintf(stderr, "threads: bad %s '%s' (1..%ld)\n", what, text, max);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    long n_threads = 64, n_messages = 100, t, accepted = 0, failed = 0;
    int quit_failed = 0, rc;
    uint16_t port;
    struct worker *workers;

    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s PORT [THREADS [MESSAGES]]\n", argv[0]);
        return 2;
    }
    port = (uint16_t)parse(argv[1], "port", 65535);
    if (argc > 2)
        n_threads = parse(argv[2], "thread count", 4096);
    if (argc > 3)
        n_messages = parse(argv[3], "message count", 1000000);

    workers = (struct worker *)calloc((size_t)n_threads, sizeof *workers);
    if (workers == NULL) {
        fprintf(stderr, "threads: out of memory\n");
        return 1;
    }
    for (t = 0; t < n_threads; t++) {
        workers[t].index = (int)t;
        workers[t].port = port;
        workers[t].messages = n_messages;
        rc = pthread_create(&workers[t].tid, NULL, run, &workers[t]);
        if (rc != 0) {
            fprintf(stderr, "threads: pthread_create: %s\n", strerror(rc));
            n_threads = t; /* join the ones started, then fail */
            failed++;
            break;
        }
    }
    for (t = 0; t < n_threads; t++) {
        pthread_join(workers[t].tid, NULL);
        accepted += workers[t].accepted;
        failed += workers[t].failed;
        quit_failed |= workers[t].quit_failed;
        if (workers[t].first_error[0] != '\0')
            fprintf(stderr, "%s\n", workers[t].first_error);
    }
    printf("threads: %ld x %ld = %ld messages, %ld accepted, %ld failed%s\n", n_threads,
           n_messages, n_threads * n_messages, accepted, failed,
           quit_failed ? " (and a QUIT failed)" : "");
    free(workers);
    return failed == 0 && !quit_failed && accepted == n_threads * n_messages ? 0 : 1;
}
