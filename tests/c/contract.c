/*
 * contract.c - checks the libsmtpc C API contract (include/smtpc.h, README.md).
 *
 * Talks to a tiny scripted SMTP server that this test forks itself on
 * 127.0.0.1:0; the server records every command line it receives, so the
 * test can assert that refused calls (NULL pointers, CR/LF in arguments,
 * wrong state) sent nothing at all.
 *
 * What each function does with a NULL pointer (as the header documents it),
 * all checked below:
 *   smtp_session_free(NULL)                     no-op
 *   smtp_session_has_extn(NULL, _) / (_, NULL)  0
 *   smtp_session_rcpt_count(NULL)               0
 *   smtp_session_last_reply/last_error(NULL..)  0, and "" in the buffer
 *   smtp_session_last_code(NULL)                SMTPC_E_NULL (0 = no reply yet)
 *   smtp_session_failed_step(NULL)              SMTPC_E_NULL
 *   every other int function                    SMTPC_E_NULL for a NULL
 *       session, a NULL required string, or a NULL command reply buffer with
 *       cap > 0. Optional (NULL allowed): the EHLO/HELO name, HELP topic and
 *       docmd args; set_trace's callback (NULL = back to stderr); the
 *       set_ca_file path (NULL = system roots) and set_local_hostname name
 *       (NULL = default); sendmail's msg when msg_len is 0. The buffers of
 *       the queries last_reply/last_error/extn_params may be NULL with any
 *       cap (cap is then ignored and only the length returned).
 * A NUL cannot be put inside a C string argument (it ends the string), so
 * "NUL in an argument" is only reachable through the message (which has a
 * length); invalid UTF-8 is checked instead, as the plan also refuses it.
 *
 * Failing checks print file:line and exit 1. The last line is
 * "contract: N passed, 0 failed".
 */
#define _POSIX_C_SOURCE 200809L

#include <smtpc.h>

#include "testlib.h" /* CHECK, CHECK_INT, CHECK_STR and the recorder server */

/* ---- the scripted server ---------------------------------------------- */

/* A reply whose text holds 1-, 2-, 3- and 4-byte UTF-8 characters:
 * "x" U+00E9 U+20AC U+1F600 "y" = 1 + 2 + 3 + 4 + 1 = 11 bytes. */
#define UTF8_TEXT "x\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80y"
#define XLONG_LINES 40

/* The long multi-line reply's text as the library should return it. */
static void xlong_line(char *buf, size_t cap, int i)
{
    snprintf(buf, cap, "line %02d %s", i,
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
}

static void serve(int conn, int log_fd)
{
    char line[4096], out[256];
    int i;

    send_text(conn, "220 test\r\n");
    while (next_command(conn, log_fd, line, sizeof line)) {
        if (starts_with(line, "EHLO ")) {
            send_text(conn, "250-test.example\r\n250-SIZE 1000\r\n250 8BITMIME\r\n");
        } else if (starts_with(line, "HELO ")) {
            send_text(conn, "250 test.example\r\n");
        } else if (starts_with(line, "HELP")) {
            send_text(conn, "214 " UTF8_TEXT "\r\n");
        } else if (strcmp(line, "XLONG") == 0) {
            for (i = 0; i < XLONG_LINES; i++) {
                send_text(conn, i + 1 < XLONG_LINES ? "250-" : "250 ");
                xlong_line(out, sizeof out, i);
                send_text(conn, out);
                send_text(conn, "\r\n");
            }
        } else if (strcmp(line, "XCLOSE") == 0) {
            break; /* hang up without a reply */
        } else if (starts_with(line, "RCPT TO:<bad")) {
            send_text(conn, "550 no such user\r\n");
        } else if (strcmp(line, "DATA") == 0) {
            send_text(conn, "354 go ahead\r\n");
            skip_message(conn, line, sizeof line);
            send_text(log_fd, "<message>\n");
            send_text(conn, "250 queued\r\n");
        } else if (strcmp(line, "QUIT") == 0) {
            send_text(conn, "221 bye\r\n");
            break;
        } else {
            send_text(conn, "250 ok\r\n");
        }
    }
}

/*
 * Checks the server received exactly the expected lines. An expected line
 * ending in '*' matches any line with that prefix (e.g. MAIL FROM may carry
 * SIZE=); one starting with '?' may be absent.
 */
static void check_received(const char *got, const char *const *want)
{
    const char *p = got;
    size_t i;

    for (i = 0; want[i] != NULL; i++) {
        const char *w = want[i];
        const char *eol = strchr(p, '\n');
        size_t glen = eol ? (size_t)(eol - p) : strlen(p);
        int optional = w[0] == '?';
        size_t wlen;
        int match;

        if (optional)
            w++;
        wlen = strlen(w);
        if (wlen > 0 && w[wlen - 1] == '*')
            match = eol != NULL && glen >= wlen - 1 && strncmp(p, w, wlen - 1) == 0;
        else
            match = eol != NULL && glen == wlen && strncmp(p, w, wlen) == 0;
        if (match) {
            p = eol + 1;
        } else if (!optional) {
            fprintf(stderr, "server received:\n%s--- expected line %lu: \"%s\"\n",
                    got, (unsigned long)i + 1, w);
            CHECK(!"the server received what was expected");
        }
    }
    if (*p != '\0') {
        fprintf(stderr, "server received:\n%s--- unexpected from: %s", got, p);
        CHECK(!"the server received nothing more");
    }
    n_checks++;
}

/* ---- trace callback --------------------------------------------------- */

struct trace_log {
    int lines;
    int saw_noop;
    int bad_newline;
};

static void on_trace(void *user, const char *line)
{
    struct trace_log *log = (struct trace_log *)user;
    size_t len = strlen(line);
    log->lines++;
    /* smtplib writes verbs in lower case ("send: 'noop\r\n'"). */
    if (strstr(line, "noop") != NULL || strstr(line, "NOOP") != NULL)
        log->saw_noop = 1;
    if (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        log->bad_newline = 1;
}

/* ---- tests ------------------------------------------------------------- */

static void test_strerror_and_version(void)
{
    int a, b;
    char want[64];

    for (a = SMTPC_OK; a >= SMTPC_E_CALLBACK; a--) {
        CHECK(smtpc_strerror(a) != NULL);
        CHECK(smtpc_strerror(a)[0] != '\0');
        for (b = a - 1; b >= SMTPC_E_CALLBACK; b--)
            CHECK(strcmp(smtpc_strerror(a), smtpc_strerror(b)) != 0);
    }
    /* Unknown codes and reply codes still give a string, never NULL. */
    CHECK(smtpc_strerror(-1000) != NULL);
    CHECK(smtpc_strerror(250) != NULL);

    CHECK(smtpc_version() != NULL);
    CHECK_STR(smtpc_version(), SMTPC_VERSION_STRING);
    snprintf(want, sizeof want, "%d.%d.%d", SMTPC_VERSION_MAJOR,
             SMTPC_VERSION_MINOR, SMTPC_VERSION_PATCH);
    CHECK_STR(smtpc_version(), want);
}

/* NULL session for every function; fine to call with nothing connected. */
static void test_null_session(void)
{
    char buf[16];
    const char *to[1] = {"a@example.org"};

    smtp_session_free(NULL); /* no-op */
    CHECK_INT(smtp_session_set_timeout_ms(NULL, 1000), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_debuglevel(NULL, 1), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_trace(NULL, on_trace, NULL), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_tls_verify(NULL, 1), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_pipelining(NULL, 1), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_ca_file(NULL, "/nonexistent.pem"), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_local_hostname(NULL, "client.example"), SMTPC_E_NULL);
    CHECK_INT(smtp_session_connect(NULL, "127.0.0.1", 25, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_connect_tls(NULL, "127.0.0.1", 465, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_helo(NULL, NULL, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_ehlo(NULL, NULL, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_has_extn(NULL, "size"), 0);
    CHECK_INT(smtp_session_extn_params(NULL, "size", buf, sizeof buf), 0);
    CHECK_INT(smtp_session_starttls(NULL, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_login(NULL, "u", "p", buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_sendmail(NULL, "a@example.org", to, 1, "x", 1, buf, sizeof buf),
              SMTPC_E_NULL);
    CHECK_INT(smtp_session_rcpt_count(NULL), 0);
    CHECK_INT(smtp_session_rcpt_code(NULL, 0, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_failed_step(NULL), SMTPC_E_NULL);
    CHECK_INT(smtp_session_vrfy(NULL, "a", buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_expn(NULL, "a", buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_help(NULL, NULL, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_noop(NULL, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_rset(NULL, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_quit(NULL, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_close(NULL), SMTPC_E_NULL);
    CHECK_INT(smtp_session_docmd(NULL, "NOOP", NULL, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_last_code(NULL), SMTPC_E_NULL);
    memset(buf, 'Z', sizeof buf);
    CHECK_INT(smtp_session_last_reply(NULL, buf, sizeof buf), 0);
    CHECK_STR(buf, "");
    memset(buf, 'Z', sizeof buf);
    CHECK_INT(smtp_session_last_error(NULL, buf, sizeof buf), 0);
    CHECK_STR(buf, "");
}

/* A fresh session: setters work, every command needs a connection first. */
static void test_not_connected(void)
{
    smtp_session *s = smtp_session_new();
    char buf[64];
    const char *to[1] = {"a@example.org"};

    CHECK(s != NULL);
    CHECK_INT(smtp_session_set_timeout_ms(s, 5000), SMTPC_OK);
    CHECK_INT(smtp_session_set_debuglevel(s, 0), SMTPC_OK);
    CHECK_INT(smtp_session_set_trace(s, NULL, NULL), SMTPC_OK); /* NULL cb = stderr */
    CHECK_INT(smtp_session_set_timeout_ms(s, 0), SMTPC_E_INVALID);
    CHECK_INT(smtp_session_set_tls_verify(s, 1), SMTPC_OK);
    CHECK_INT(smtp_session_set_pipelining(s, 1), SMTPC_OK);
    CHECK_INT(smtp_session_set_ca_file(s, "/nonexistent.pem"), SMTPC_OK); /* read at handshake */
    CHECK_INT(smtp_session_set_ca_file(s, NULL), SMTPC_OK);               /* system roots */
    CHECK_INT(smtp_session_set_local_hostname(s, "client.example"), SMTPC_OK);
    CHECK_INT(smtp_session_set_local_hostname(s, NULL), SMTPC_OK);        /* the default */
    CHECK_INT(smtp_session_set_local_hostname(s, "bad\r\nname"), SMTPC_E_INVALID);
    CHECK_INT(smtp_session_set_local_hostname(s, "bad\nname"), SMTPC_E_INVALID);
    CHECK_INT(smtp_session_set_local_hostname(s, "bad\xffname"), SMTPC_E_INVALID);

    CHECK_INT(smtp_session_last_code(s), 0);
    CHECK_INT(smtp_session_last_reply(s, NULL, 0), 0);
    buf[0] = 'Z';
    CHECK_INT(smtp_session_last_reply(s, buf, sizeof buf), 0);
    CHECK_STR(buf, "");
    CHECK_INT(smtp_session_rcpt_count(s), 0);
    CHECK_INT(smtp_session_failed_step(s), SMTPC_STEP_NONE);
    CHECK_INT(smtp_session_has_extn(s, "size"), 0);
    CHECK_INT(smtp_session_has_extn(s, NULL), 0);
    CHECK_INT(smtp_session_rcpt_code(s, 0, buf, sizeof buf), SMTPC_E_INVALID);

    CHECK_INT(smtp_session_helo(s, NULL, buf, sizeof buf), SMTPC_E_STATE);
    CHECK_INT(smtp_session_ehlo(s, NULL, buf, sizeof buf), SMTPC_E_STATE);
    CHECK_INT(smtp_session_starttls(s, buf, sizeof buf), SMTPC_E_STATE);
    CHECK_INT(smtp_session_login(s, "u", "p", buf, sizeof buf), SMTPC_E_STATE);
    CHECK_INT(smtp_session_sendmail(s, "a@example.org", to, 1, "x\r\n", 3, buf, sizeof buf),
              SMTPC_E_STATE);
    CHECK_INT(smtp_session_vrfy(s, "a", buf, sizeof buf), SMTPC_E_STATE);
    CHECK_INT(smtp_session_expn(s, "a", buf, sizeof buf), SMTPC_E_STATE);
    CHECK_INT(smtp_session_help(s, NULL, buf, sizeof buf), SMTPC_E_STATE);
    CHECK_INT(smtp_session_noop(s, buf, sizeof buf), SMTPC_E_STATE);
    CHECK_INT(smtp_session_rset(s, buf, sizeof buf), SMTPC_E_STATE);
    CHECK_INT(smtp_session_quit(s, buf, sizeof buf), SMTPC_E_STATE);
    CHECK_INT(smtp_session_docmd(s, "NOOP", NULL, buf, sizeof buf), SMTPC_E_STATE);
    /* An error leaves a message for smtp_session_last_error. */
    CHECK(smtp_session_last_error(s, NULL, 0) > 0);
    CHECK_INT(smtp_session_close(s), SMTPC_OK); /* harmless when not connected */
    smtp_session_free(s);
}

/* A server that never greets: connect gives up after the timeout. */
static void test_timeout(void)
{
    smtp_session *s;
    char buf[64];
    uint16_t port;
    int fd = bind_loopback(&port);

    CHECK(listen(fd, 1) == 0); /* the kernel completes the handshake; no accept */

    s = smtp_session_new();
    CHECK(s != NULL);
    CHECK_INT(smtp_session_set_timeout_ms(s, 300), SMTPC_OK);
    CHECK_INT(smtp_session_connect(s, "127.0.0.1", port, buf, sizeof buf), SMTPC_E_TIMEOUT);
    CHECK_INT(smtp_session_noop(s, buf, sizeof buf), SMTPC_E_STATE);
    smtp_session_free(s);
    close(fd);
}

/* Nothing listens: every address refuses. */
static void test_connect_refused(void)
{
    smtp_session *s;
    char buf[64];
    uint16_t port;

    close(bind_loopback(&port)); /* bound, never listened: the port is free and closed */

    s = smtp_session_new();
    CHECK(s != NULL);
    CHECK_INT(smtp_session_connect(s, "127.0.0.1", port, buf, sizeof buf), SMTPC_E_CONNECT);
    CHECK(smtp_session_last_error(s, NULL, 0) > 0);
    CHECK_INT(smtp_session_noop(s, buf, sizeof buf), SMTPC_E_STATE);
    smtp_session_free(s);
}

/* Every call that must be refused before anything reaches the server. */
static void refuse_bad_arguments(smtp_session *s)
{
    static const char *const bad[] = {
        "a\r\nRSET", "a\rb", "a\nb", "\r\n", "a\xff" "b", "a\xc3", /* truncated UTF-8 */
    };
    char buf[64];
    const char *to[1] = {"good@example.org"};
    size_t i;

    /* No recipients at all. */
    CHECK_INT(smtp_session_sendmail(s, "good@example.org", to, 0, "x\r\n", 3, buf, sizeof buf),
              SMTPC_E_INVALID);
    CHECK_INT(smtp_session_sendmail(s, "good@example.org", NULL, 0, "x\r\n", 3, buf, sizeof buf),
              SMTPC_E_INVALID);

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *b = bad[i];
        const char *to_bad[1];
        const char *to_mixed[2];
        to_bad[0] = b;
        to_mixed[0] = "good@example.org";
        to_mixed[1] = b;

        CHECK_INT(smtp_session_ehlo(s, b, buf, sizeof buf), SMTPC_E_INVALID);
        CHECK(smtp_session_last_error(s, NULL, 0) > 0);
        CHECK_INT(smtp_session_helo(s, b, buf, sizeof buf), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_vrfy(s, b, buf, sizeof buf), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_expn(s, b, buf, sizeof buf), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_help(s, b, buf, sizeof buf), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_docmd(s, "XARGS", b, buf, sizeof buf), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_docmd(s, b, NULL, buf, sizeof buf), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_sendmail(s, b, to_mixed, 1, "x\r\n", 3, buf, sizeof buf),
                  SMTPC_E_INVALID);
        CHECK_INT(smtp_session_sendmail(s, "good@example.org", to_bad, 1, "x\r\n", 3, buf,
                                        sizeof buf),
                  SMTPC_E_INVALID);
        /* The bad recipient comes second: still nothing may be sent. */
        CHECK_INT(smtp_session_sendmail(s, "good@example.org", to_mixed, 2, "x\r\n", 3, buf,
                                        sizeof buf),
                  SMTPC_E_INVALID);
    }
}

/* NULL pointers on a connected session: E_NULL, nothing sent. */
static void refuse_null_arguments(smtp_session *s)
{
    char buf[64];
    const char *to[2] = {"good@example.org", NULL};

    CHECK_INT(smtp_session_connect(s, NULL, 25, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_connect_tls(s, NULL, 465, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_has_extn(s, NULL), 0);
    CHECK_INT(smtp_session_extn_params(s, NULL, buf, sizeof buf), 0);
    CHECK_INT(smtp_session_login(s, NULL, "p", buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_login(s, "u", NULL, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_sendmail(s, NULL, to, 1, "x\r\n", 3, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_sendmail(s, "a@example.org", NULL, 1, "x\r\n", 3, buf, sizeof buf),
              SMTPC_E_NULL);
    CHECK_INT(smtp_session_sendmail(s, "a@example.org", to, 2, "x\r\n", 3, buf, sizeof buf),
              SMTPC_E_NULL); /* to[1] is NULL */
    CHECK_INT(smtp_session_sendmail(s, "a@example.org", to, 1, NULL, 3, buf, sizeof buf),
              SMTPC_E_NULL);
    CHECK_INT(smtp_session_vrfy(s, NULL, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_expn(s, NULL, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_docmd(s, NULL, NULL, buf, sizeof buf), SMTPC_E_NULL);
    /* A NULL reply buffer is only allowed with cap 0. */
    CHECK_INT(smtp_session_helo(s, NULL, NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_ehlo(s, NULL, NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_starttls(s, NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_login(s, "u", "p", NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_sendmail(s, "a@example.org", to, 1, "x\r\n", 3, NULL, 8),
              SMTPC_E_NULL);
    CHECK_INT(smtp_session_vrfy(s, "a", NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_expn(s, "a", NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_help(s, NULL, NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_noop(s, NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_rset(s, NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_quit(s, NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_docmd(s, "NOOP", NULL, NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_rcpt_code(s, 0, NULL, 8), SMTPC_E_NULL);
}

static void test_session(void)
{
    static const char *const want[] = {
        "EHLO client.example",
        "NOOP", "NOOP", "NOOP", "NOOP", /* reply buffer sizes */
        "XLONG",
        "HELP", "HELP", "HELP", /* UTF-8 truncation */
        "XARGS a b", "XNOARGS",
        "NOOP", "NOOP", /* trace on, trace off */
        "MAIL FROM:<from@example.org>*", "RCPT TO:<good@example.org>*",
        "RCPT TO:<bad@example.org>*", "DATA", "<message>",
        "MAIL FROM:<from@example.org>*", "RCPT TO:<bad2@example.org>*",
        "?RSET", /* smtplib resets after every recipient was refused */
        "QUIT", NULL,
    };
    struct recorder f, f2;
    struct trace_log trace;
    smtp_session *s;
    char reply[512], one[1], canary[8], expected[4096], line[256];
    char *full, *got;
    size_t len, i, cap;
    const char *to[2] = {"good@example.org", "bad@example.org"};
    const char *to_bad[1] = {"bad2@example.org"};
    static const char msg[] = "Subject: contract\r\n\r\nhello\r\n";
    /* For each cap, how many bytes of UTF8_TEXT fit without splitting a
     * character (cap - 1 bytes of room for the text, then the NUL). */
    static const size_t utf8_fit[] = {0, 0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10, 11, 11};

    /* Fork both servers before the library allocates anything (see
     * recorder_start in testlib.h). */
    recorder_start(&f, 1, serve);
    recorder_start(&f2, 1, serve);
    s = smtp_session_new();
    CHECK(s != NULL);
    CHECK_INT(smtp_session_set_timeout_ms(s, 10000), SMTPC_OK);

    CHECK_INT(smtp_session_connect(s, "127.0.0.1", f.port, reply, sizeof reply), 220);
    CHECK_STR(reply, "test");
    CHECK_INT(smtp_session_last_code(s), 220);
    CHECK_INT(smtp_session_connect(s, "127.0.0.1", f.port, reply, sizeof reply), SMTPC_E_STATE);

    /* Refusals before EHLO too, so a lazy EHLO inside sendmail would show. */
    refuse_bad_arguments(s);
    refuse_null_arguments(s);

    CHECK_INT(smtp_session_ehlo(s, "client.example", reply, sizeof reply), 250);
    CHECK_STR(reply, "test.example\nSIZE 1000\n8BITMIME");
    CHECK_INT(smtp_session_has_extn(s, "size"), 1);
    CHECK_INT(smtp_session_has_extn(s, "SIZE"), 1); /* keywords are case-insensitive */
    CHECK_INT(smtp_session_has_extn(s, "8bitmime"), 1);
    CHECK_INT(smtp_session_has_extn(s, "starttls"), 0);
    CHECK_INT(smtp_session_extn_params(s, "size", reply, sizeof reply), 4);
    CHECK_STR(reply, "1000");
    CHECK_INT(smtp_session_extn_params(s, "size", NULL, 0), 4);
    CHECK_INT(smtp_session_extn_params(s, "size", NULL, 8), 4); /* a query: cap ignored */
    CHECK_INT(smtp_session_extn_params(s, "size", reply, 3), 4);
    CHECK_STR(reply, "10");
    CHECK_INT(smtp_session_extn_params(s, "8bitmime", reply, sizeof reply), 0);
    CHECK_STR(reply, "");
    CHECK_INT(smtp_session_extn_params(s, "starttls", reply, sizeof reply), 0);
    CHECK_INT(smtp_session_has_extn(s, "starttls"), 0);

    refuse_bad_arguments(s);
    refuse_null_arguments(s);

    /* Reply buffers: 1 byte gets "", cap 0 writes nothing, NULL with 0 is fine. */
    one[0] = 'Z';
    CHECK_INT(smtp_session_noop(s, one, sizeof one), 250);
    CHECK_INT(one[0], '\0');
    CHECK_INT(smtp_session_noop(s, NULL, 0), 250);
    memset(canary, 'Z', sizeof canary);
    CHECK_INT(smtp_session_noop(s, canary, 0), 250);
    for (i = 0; i < sizeof canary; i++)
        CHECK_INT(canary[i], 'Z');
    CHECK_INT(smtp_session_noop(s, reply, sizeof reply), 250);
    CHECK_STR(reply, "ok");
    CHECK_INT(smtp_session_last_code(s), 250);
    CHECK_INT(smtp_session_last_reply(s, NULL, 0), 2);
    CHECK_INT(smtp_session_last_reply(s, canary, 0), 2);
    for (i = 0; i < sizeof canary; i++)
        CHECK_INT(canary[i], 'Z');
    one[0] = 'Z';
    CHECK_INT(smtp_session_last_reply(s, one, sizeof one), 2);
    CHECK_INT(one[0], '\0');

    /* A long multi-line reply: truncated in the buffer, lines joined by
     * '\n'; last_reply gives the full length, then all of it. */
    expected[0] = '\0';
    for (i = 0; i < XLONG_LINES; i++) {
        xlong_line(line, sizeof line, (int)i);
        if (i > 0)
            strcat(expected, "\n");
        strcat(expected, line);
    }
    CHECK_INT(smtp_session_docmd(s, "XLONG", NULL, reply, 64), 250);
    CHECK_INT(strlen(reply), 63);
    CHECK(strncmp(reply, expected, 63) == 0);
    len = smtp_session_last_reply(s, NULL, 0);
    CHECK_INT(len, strlen(expected));
    full = (char *)malloc(len + 1);
    CHECK(full != NULL);
    CHECK_INT(smtp_session_last_reply(s, full, len + 1), len);
    CHECK_STR(full, expected);
    CHECK_INT(smtp_session_last_reply(s, full, len), len); /* one short */
    CHECK_INT(strlen(full), len - 1);
    free(full);

    /* Truncation never splits a UTF-8 character. */
    CHECK_INT(smtp_session_help(s, NULL, reply, sizeof reply), 214);
    CHECK_STR(reply, UTF8_TEXT);
    for (cap = 1; cap < sizeof utf8_fit / sizeof utf8_fit[0]; cap++) {
        memset(reply, 'Z', sizeof reply);
        CHECK_INT(smtp_session_last_reply(s, reply, cap), strlen(UTF8_TEXT));
        CHECK_INT(strlen(reply), utf8_fit[cap]);
        CHECK(strncmp(reply, UTF8_TEXT, utf8_fit[cap]) == 0);
        CHECK_INT(reply[cap], 'Z'); /* nothing written past cap */
    }
    memset(reply, 'Z', sizeof reply);
    CHECK_INT(smtp_session_help(s, NULL, reply, 4), 214);
    CHECK_STR(reply, "x\xc3\xa9");
    CHECK_INT(smtp_session_help(s, NULL, reply, 3), 214);
    CHECK_STR(reply, "x");

    CHECK_INT(smtp_session_docmd(s, "XARGS", "a b", reply, sizeof reply), 250);
    CHECK_INT(smtp_session_docmd(s, "XNOARGS", NULL, reply, sizeof reply), 250);

    /* Trace callback: lines at debug level 1, none at level 0. */
    memset(&trace, 0, sizeof trace);
    CHECK_INT(smtp_session_set_trace(s, on_trace, &trace), SMTPC_OK);
    CHECK_INT(smtp_session_set_debuglevel(s, 1), SMTPC_OK);
    CHECK_INT(smtp_session_noop(s, reply, sizeof reply), 250);
    CHECK(trace.lines > 0);
    CHECK(trace.saw_noop);
    CHECK(!trace.bad_newline);
    CHECK_INT(smtp_session_set_debuglevel(s, 0), SMTPC_OK);
    memset(&trace, 0, sizeof trace);
    CHECK_INT(smtp_session_noop(s, reply, sizeof reply), 250);
    CHECK_INT(trace.lines, 0);
    CHECK_INT(smtp_session_set_trace(s, NULL, NULL), SMTPC_OK);

    /* sendmail with one refused recipient: accepted, codes per recipient. */
    CHECK_INT(smtp_session_sendmail(s, "from@example.org", to, 2, msg, sizeof msg - 1, reply,
                                    sizeof reply),
              250);
    CHECK_STR(reply, "queued");
    CHECK_INT(smtp_session_failed_step(s), SMTPC_STEP_NONE);
    CHECK_INT(smtp_session_rcpt_count(s), 2);
    CHECK_INT(smtp_session_rcpt_code(s, 0, reply, sizeof reply), 250);
    CHECK_STR(reply, "ok");
    CHECK_INT(smtp_session_rcpt_code(s, 1, reply, sizeof reply), 550);
    CHECK_STR(reply, "no such user");
    CHECK_INT(smtp_session_rcpt_code(s, 1, NULL, 0), 550);
    CHECK_INT(smtp_session_rcpt_code(s, 2, reply, sizeof reply), SMTPC_E_INVALID);

    /* Every recipient refused: a failure at the RCPT step. */
    CHECK_INT(smtp_session_sendmail(s, "from@example.org", to_bad, 1, msg, sizeof msg - 1,
                                    reply, sizeof reply),
              550);
    CHECK_INT(smtp_session_failed_step(s), SMTPC_STEP_RCPT);
    CHECK_INT(smtp_session_rcpt_count(s), 1);
    CHECK_INT(smtp_session_rcpt_code(s, 0, reply, sizeof reply), 550);

    CHECK_INT(smtp_session_quit(s, reply, sizeof reply), 221);
    CHECK_STR(reply, "bye");
    /* After QUIT: disconnected, and what EHLO taught is forgotten. */
    CHECK_INT(smtp_session_noop(s, reply, sizeof reply), SMTPC_E_STATE);
    CHECK_INT(smtp_session_quit(s, reply, sizeof reply), SMTPC_E_STATE);
    CHECK_INT(smtp_session_has_extn(s, "size"), 0);

    got = recorder_finish(&f);
    check_received(got, want);
    free(got);

    /* The same handle connects again; a server hang-up is SMTPC_E_CLOSED. */
    {
        static const char *const want2[] = {"XCLOSE", NULL};
        CHECK_INT(smtp_session_connect(s, "127.0.0.1", f2.port, NULL, 0), 220);
        CHECK_INT(smtp_session_docmd(s, "XCLOSE", NULL, reply, sizeof reply), SMTPC_E_CLOSED);
        CHECK(smtp_session_last_error(s, NULL, 0) > 0);
        CHECK_INT(smtp_session_noop(s, reply, sizeof reply), SMTPC_E_STATE);
        got = recorder_finish(&f2);
        check_received(got, want2);
        free(got);
    }
    smtp_session_free(s);
}

/* Freeing a connected handle closes the connection (the server sees EOF). */
static void test_free_connected(void)
{
    static const char *const want[] = {"EHLO client.example", NULL};
    struct recorder f;
    smtp_session *s;
    char *got;

    recorder_start(&f, 1, serve); /* before smtp_session_new: see test_session */
    s = smtp_session_new();
    CHECK(s != NULL);
    CHECK_INT(smtp_session_set_local_hostname(s, "client.example"), SMTPC_OK);
    CHECK_INT(smtp_session_connect(s, "127.0.0.1", f.port, NULL, 0), 220);
    CHECK_INT(smtp_session_ehlo(s, NULL, NULL, 0), 250); /* uses the local hostname */
    smtp_session_free(s);
    got = recorder_finish(&f);
    check_received(got, want);
    free(got);
}

int main(void)
{
    test_strerror_and_version();
    test_null_session();
    test_not_connected();
    test_timeout();
    test_connect_refused();
    test_session();
    test_free_connected();
    printf("contract: %d passed, 0 failed\n", n_checks);
    return 0;
}
