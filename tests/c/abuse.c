/*
 * abuse.c - every exported function of smtpc.h, called the wrong way.
 *
 * contract.c checks the core API; this file completes the matrix for all
 * exports (the batch_*, ESMTP, LMTP, AUTH, streaming and status calls
 * included), each against what include/smtpc.h documents:
 *
 *   1. a NULL handle: SMTPC_E_NULL for int functions, 0 for the counts and
 *      booleans (batch_count, batch_rcpt_count, rcpt_count, waits,
 *      is_connected, is_tls, has_extn, last_reply, last_error), and the
 *      reply buffer still gets "" when reply_cap > 0;
 *   2. each NULL pointer argument on a live handle: SMTPC_E_NULL for
 *      required ones (strings, recipient lists and entries, callbacks, a
 *      reply buffer with reply_cap > 0, a message with msg_len > 0); the
 *      optional ones (EHLO/HELO/LHLO name, HELP topic, docmd args, the DSN
 *      strings, set_ca_file/set_local_hostname, set_trace's callback,
 *      callback user pointers, the query buffers of last_reply, last_error,
 *      extn_params, last_enhanced, rcpt_enhanced) are accepted;
 *   3. 0- and 1-byte buffers: cap 0 writes nothing, cap 1 writes only "";
 *   4. invalid UTF-8 in each string argument: SMTPC_E_INVALID (has_extn: 0),
 *      and nothing reaches the server;
 *   5. every command after QUIT and after a failed connect: SMTPC_E_STATE,
 *      with callbacks never called.
 *
 * A scripted server forked on 127.0.0.1:0 logs each command line it gets;
 * the test compares that log with exactly what should have been sent.
 * Failing checks print file:line and exit 1; the last line is
 * "abuse: N passed, 0 failed".
 */
#define _POSIX_C_SOURCE 200809L

#include <smtpc.h>

#include <signal.h>

#include "testlib.h" /* CHECK, CHECK_INT, CHECK_STR and the recorder server */

/* A buffer of `cap` bytes followed by canary bytes, to see what a call
 * wrote and that it wrote nothing past cap. */
#define CANARY 'Q'
struct probe {
    char bytes[64];
};

static char *probe_reset(struct probe *p)
{
    memset(p->bytes, CANARY, sizeof p->bytes);
    return p->bytes;
}

/* Nothing written from index `from` on. */
static int probe_untouched(const struct probe *p, size_t from)
{
    size_t i;
    for (i = from; i < sizeof p->bytes; i++)
        if (p->bytes[i] != CANARY)
            return 0;
    return 1;
}

/* ---- the scripted server ----------------------------------------------- */

/* One SMTP (or, after LHLO, LMTP) conversation; every command line is
 * logged upper-cased up to its first space, and a message as "<body>". */
static void converse(int conn, int log)
{
    char line[2048];
    int lmtp = 0, accepted = 0, i;

    send_text(conn, "220 abuse.test ready\r\n");
    while (next_command(conn, log, line, sizeof line)) {
        if (starts_with(line, "EHLO ") || starts_with(line, "LHLO ")) {
            lmtp = starts_with(line, "LHLO ");
            send_text(conn, "250-abuse.test\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
                            "250-DSN\r\n250 AUTH PLAIN LOGIN\r\n");
        } else if (starts_with(line, "HELO ")) {
            send_text(conn, "250 abuse.test\r\n");
        } else if (starts_with(line, "MAIL FROM:")) {
            accepted = 0;
            send_text(conn, "250 2.1.0 sender ok\r\n");
        } else if (starts_with(line, "RCPT TO:<bad")) {
            send_text(conn, "550 5.1.1 no such user\r\n");
        } else if (starts_with(line, "RCPT TO:")) {
            accepted++;
            send_text(conn, "250 2.1.5 recipient ok\r\n");
        } else if (strcmp(line, "DATA") == 0) {
            send_text(conn, "354 go ahead\r\n");
            skip_message(conn, line, sizeof line);
            send_text(log, "<body>\n");
            if (!lmtp)
                send_text(conn, "250 2.0.0 queued\r\n");
            for (i = 0; lmtp && i < accepted; i++)
                send_text(conn, i == 0 ? "250 2.1.5 delivered\r\n"
                                       : "452 4.2.2 mailbox full\r\n");
        } else if (starts_with(line, "AUTH ")) {
            send_text(conn, "235 2.7.0 authenticated\r\n");
        } else if (strcmp(line, "QUIT") == 0) {
            send_text(conn, "221 2.0.0 bye\r\n");
            break;
        } else {
            send_text(conn, "250 2.0.0 ok\r\n");
        }
    }
}

/* ---- callbacks ----------------------------------------------------------- */

struct reader {
    const char *text;
    size_t off;
    int calls;
};

static int64_t read_cb(void *user, char *buf, size_t cap)
{
    struct reader *r = (struct reader *)user;
    size_t left = strlen(r->text) - r->off;
    size_t n = left < cap ? left : cap;
    r->calls++;
    memcpy(buf, r->text + r->off, n);
    r->off += n;
    return (int64_t)n;
}

/* Yields `count` copies of one message whose fields may be swapped for
 * bad ones. */
struct source {
    const char *from;
    const char *const *to;
    size_t n_to;
    const char *msg;
    size_t msg_len;
    int count;
    int calls;
};

static int next_cb(void *user, const char **from, const char *const **to, size_t *n_to,
                   const char **msg, size_t *msg_len)
{
    struct source *src = (struct source *)user;
    src->calls++;
    if (src->count <= 0)
        return 0;
    src->count--;
    *from = src->from;
    *to = src->to;
    *n_to = src->n_to;
    *msg = src->msg;
    *msg_len = src->msg_len;
    return 1;
}

static int never_called;

static int64_t read_never(void *user, char *buf, size_t cap)
{
    (void)user;
    (void)buf;
    (void)cap;
    never_called++;
    return 0;
}

static int next_never(void *user, const char **from, const char *const **to, size_t *n_to,
                      const char **msg, size_t *msg_len)
{
    (void)user;
    (void)from;
    (void)to;
    (void)n_to;
    (void)msg;
    (void)msg_len;
    never_called++;
    return 0;
}

static void trace_never(void *user, const char *line)
{
    (void)user;
    (void)line;
    never_called++;
}

/* ---- 1. a NULL handle ------------------------------------------------------ */

static const char *const ONE_TO[1] = {"to@example.org"};
static const char MSG[] = "Subject: abuse\r\n\r\nbody\r\n";
#define MSG_LEN (sizeof MSG - 1)

/* A reply-buffer call on a NULL handle still NUL-terminates the buffer. */
#define NULL_HANDLE_REPLY(call_with_buf)                                     \
    do {                                                                     \
        char *buf = probe_reset(&pr);                                        \
        CHECK_INT(call_with_buf, SMTPC_E_NULL);                              \
        CHECK_INT(buf[0], '\0');                                             \
        CHECK(probe_untouched(&pr, 1));                                      \
    } while (0)

static void test_null_handle(void)
{
    struct probe pr;
    struct reader rd = {"x\r\n", 0, 0};
    const size_t cap = 16;

    never_called = 0;
    smtp_session_free(NULL);
    CHECK(smtpc_strerror(SMTPC_E_NULL) != NULL);
    CHECK(smtpc_version() != NULL);

    CHECK_INT(smtp_session_set_timeout_ms(NULL, 1000), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_body_timeout_ms(NULL, 1000), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_debuglevel(NULL, 1), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_trace(NULL, trace_never, NULL), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_trace(NULL, NULL, NULL), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_tls_verify(NULL, 0), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_ca_file(NULL, NULL), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_local_hostname(NULL, NULL), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_source_address(NULL, NULL, 0), SMTPC_E_NULL);
    CHECK_INT(smtp_session_cancel(NULL), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_pipelining(NULL, 0), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_tls_policy(NULL, SMTPC_TLS_REQUIRED), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_allow_insecure_auth(NULL, 1), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_chunking(NULL, 0), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_binarymime(NULL, 1), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_dsn(NULL, "FULL", "id", "NEVER", 1), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_dsn(NULL, NULL, NULL, NULL, 0), SMTPC_E_NULL);

    NULL_HANDLE_REPLY(smtp_session_connect(NULL, "127.0.0.1", 25, buf, cap));
    NULL_HANDLE_REPLY(smtp_session_connect_tls(NULL, "127.0.0.1", 465, buf, cap));
    NULL_HANDLE_REPLY(smtp_session_helo(NULL, "h", buf, cap));
    NULL_HANDLE_REPLY(smtp_session_ehlo(NULL, "h", buf, cap));
    NULL_HANDLE_REPLY(smtp_session_lhlo(NULL, "h", buf, cap));
    NULL_HANDLE_REPLY(smtp_session_lhlo(NULL, NULL, buf, cap));
    NULL_HANDLE_REPLY(smtp_session_starttls(NULL, buf, cap));
    NULL_HANDLE_REPLY(smtp_session_login(NULL, "u", "p", buf, cap));
    NULL_HANDLE_REPLY(smtp_session_auth(NULL, "PLAIN", "u", "p", buf, cap));
    NULL_HANDLE_REPLY(smtp_session_sendmail(NULL, "f@example.org", ONE_TO, 1, MSG, MSG_LEN,
                                            buf, cap));
    NULL_HANDLE_REPLY(smtp_session_sendmail_cb(NULL, "f@example.org", ONE_TO, 1, read_cb, &rd,
                                               -1, buf, cap));
    NULL_HANDLE_REPLY(smtp_session_rcpt_code(NULL, 0, buf, cap));
    NULL_HANDLE_REPLY(smtp_session_rcpt_data_code(NULL, 0, buf, cap));
    NULL_HANDLE_REPLY(smtp_session_batch_code(NULL, 0, buf, cap));
    NULL_HANDLE_REPLY(smtp_session_batch_rcpt_code(NULL, 0, 0, buf, cap));
    NULL_HANDLE_REPLY(smtp_session_vrfy(NULL, "a", buf, cap));
    NULL_HANDLE_REPLY(smtp_session_expn(NULL, "a", buf, cap));
    NULL_HANDLE_REPLY(smtp_session_help(NULL, NULL, buf, cap));
    NULL_HANDLE_REPLY(smtp_session_noop(NULL, buf, cap));
    NULL_HANDLE_REPLY(smtp_session_rset(NULL, buf, cap));
    NULL_HANDLE_REPLY(smtp_session_quit(NULL, buf, cap));
    NULL_HANDLE_REPLY(smtp_session_docmd(NULL, "NOOP", NULL, buf, cap));
    NULL_HANDLE_REPLY(smtp_session_mail(NULL, "a@b", NULL, 0, buf, cap));
    NULL_HANDLE_REPLY(smtp_session_rcpt(NULL, "a@b", NULL, 0, buf, cap));
    NULL_HANDLE_REPLY(smtp_session_data(NULL, MSG, MSG_LEN, buf, cap));
    NULL_HANDLE_REPLY(smtp_session_getreply(NULL, buf, cap));

    /* Everything NULL at once: still just SMTPC_E_NULL. */
    CHECK_INT(smtp_session_connect(NULL, NULL, 0, NULL, 0), SMTPC_E_NULL);
    CHECK_INT(smtp_session_auth(NULL, NULL, NULL, NULL, NULL, 0), SMTPC_E_NULL);
    CHECK_INT(smtp_session_sendmail_cb(NULL, NULL, NULL, 0, NULL, NULL, -1, NULL, 0),
              SMTPC_E_NULL);
    CHECK_INT(smtp_session_sendmail(NULL, NULL, NULL, 0, NULL, 0, NULL, 0), SMTPC_E_NULL);
    CHECK_INT(smtp_session_batch_add(NULL, NULL, NULL, 0, NULL, 0), SMTPC_E_NULL);
    CHECK_INT(smtp_session_batch_send_cb(NULL, NULL, NULL), SMTPC_E_NULL);
    CHECK_INT(smtp_session_mail(NULL, NULL, NULL, 0, NULL, 0), SMTPC_E_NULL);
    CHECK_INT(smtp_session_rcpt(NULL, NULL, NULL, 0, NULL, 0), SMTPC_E_NULL);
    CHECK_INT(smtp_session_data(NULL, NULL, 0, NULL, 0), SMTPC_E_NULL);
    CHECK_INT(smtp_session_putcmd(NULL, NULL, NULL), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_mail_options(NULL, NULL, 0), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_rcpt_options(NULL, NULL, 0), SMTPC_E_NULL);

    CHECK_INT(smtp_session_batch_add(NULL, "f@example.org", ONE_TO, 1, MSG, MSG_LEN),
              SMTPC_E_NULL);
    CHECK_INT(smtp_session_batch_send(NULL), SMTPC_E_NULL);
    CHECK_INT(smtp_session_batch_send_cb(NULL, next_never, NULL), SMTPC_E_NULL);
    CHECK_INT(smtp_session_batch_count(NULL), 0);
    CHECK_INT(smtp_session_batch_failed_step(NULL, 0), SMTPC_E_NULL);
    CHECK_INT(smtp_session_batch_rcpt_count(NULL, 0), 0);
    CHECK_INT(smtp_session_batch_clear(NULL), SMTPC_E_NULL);
    CHECK_INT(smtp_session_has_extn(NULL, "SIZE"), 0);
    CHECK_INT(smtp_session_has_extn(NULL, NULL), 0);
    CHECK_INT(smtp_session_rcpt_count(NULL), 0);
    CHECK_INT(smtp_session_failed_step(NULL), SMTPC_E_NULL);
    CHECK_INT(smtp_session_outcome(NULL), SMTPC_E_NULL);
    CHECK_INT(smtp_session_batch_outcome(NULL, 0), SMTPC_E_NULL);
    CHECK_INT(smtp_session_close(NULL), SMTPC_E_NULL);
    CHECK_INT(smtp_session_is_connected(NULL), 0);
    CHECK_INT(smtp_session_is_tls(NULL), 0);
    CHECK_INT(smtp_session_last_code(NULL), SMTPC_E_NULL);
    CHECK_INT(smtp_session_waits(NULL), 0);
    {
        char *buf = probe_reset(&pr);
        CHECK_INT(smtp_session_last_reply(NULL, buf, cap), 0);
        CHECK_INT(buf[0], '\0');
        CHECK(probe_untouched(&pr, 1));
        buf = probe_reset(&pr);
        CHECK_INT(smtp_session_last_error(NULL, buf, cap), 0);
        CHECK_INT(buf[0], '\0');
        CHECK(probe_untouched(&pr, 1));
        CHECK_INT(smtp_session_last_reply(NULL, NULL, 0), 0);
        CHECK_INT(smtp_session_last_error(NULL, NULL, 0), 0);
        /* Every query that copies text returns size_t: 0 for NULL. */
        buf = probe_reset(&pr);
        CHECK_INT(smtp_session_extn_params(NULL, "SIZE", buf, cap), 0);
        CHECK_INT(buf[0], '\0');
        buf = probe_reset(&pr);
        CHECK_INT(smtp_session_last_enhanced(NULL, buf, cap), 0);
        CHECK_INT(buf[0], '\0');
        buf = probe_reset(&pr);
        CHECK_INT(smtp_session_rcpt_enhanced(NULL, 0, buf, cap), 0);
        CHECK_INT(buf[0], '\0');
        buf = probe_reset(&pr);
        CHECK_INT(smtp_session_extn_name(NULL, 0, buf, cap), 0);
        CHECK_INT(buf[0], '\0');
        CHECK(probe_untouched(&pr, 1));
        CHECK_INT(smtp_session_extn_params(NULL, NULL, NULL, 0), 0);
        CHECK_INT(smtp_session_extn_count(NULL), 0);
    }

    /* ---- messages: smtp_message_* and smtp_session_send_message* -------- *
     * A NULL handle: SMTPC_E_NULL (render and last_error: 0, and the buffer
     * gets ""). A live message: NULL for a required pointer is
     * SMTPC_E_NULL; CR/LF in header text, invalid UTF-8, an unknown content
     * type, a bad DKIM key are SMTPC_E_INVALID; a missing file SMTPC_E_IO.
     * No server is involved: nothing can be sent. */
    {
        static const unsigned char bytes[] = {0, 1, 2};
        smtp_message *m;
        char *buf;

        smtp_message_free(NULL);
        CHECK_INT(smtp_message_set_from(NULL, "a@example.org", NULL), SMTPC_E_NULL);
        CHECK_INT(smtp_message_set_sender(NULL, "a@example.org", "A"), SMTPC_E_NULL);
        CHECK_INT(smtp_message_add_to(NULL, "a@example.org", NULL), SMTPC_E_NULL);
        CHECK_INT(smtp_message_add_cc(NULL, "a@example.org", NULL), SMTPC_E_NULL);
        CHECK_INT(smtp_message_add_bcc(NULL, "a@example.org", NULL), SMTPC_E_NULL);
        CHECK_INT(smtp_message_add_reply_to(NULL, "a@example.org", NULL), SMTPC_E_NULL);
        CHECK_INT(smtp_message_set_subject(NULL, "s"), SMTPC_E_NULL);
        CHECK_INT(smtp_message_add_header(NULL, "X-A", "v"), SMTPC_E_NULL);
        CHECK_INT(smtp_message_set_text(NULL, "t", 1), SMTPC_E_NULL);
        CHECK_INT(smtp_message_set_html(NULL, "h", 1), SMTPC_E_NULL);
        CHECK_INT(smtp_message_attach(NULL, bytes, sizeof bytes, NULL, "a.bin"), SMTPC_E_NULL);
        CHECK_INT(smtp_message_attach_file(NULL, "/etc/hostname", NULL, NULL), SMTPC_E_NULL);
        CHECK_INT(smtp_message_add_inline(NULL, bytes, sizeof bytes, "image/png", "c"),
                  SMTPC_E_NULL);
        CHECK_INT(smtp_message_add_inline_file(NULL, "/etc/hostname", NULL, "c"), SMTPC_E_NULL);
        CHECK_INT(smtp_message_set_raw(NULL, MSG, MSG_LEN), SMTPC_E_NULL);
        CHECK_INT(smtp_message_set_dkim(NULL, NULL, NULL, NULL, NULL), SMTPC_E_NULL);
        CHECK_INT(smtp_message_render(NULL, NULL, 0), 0);
        buf = probe_reset(&pr);
        CHECK_INT(smtp_message_render(NULL, buf, cap), 0);
        CHECK_INT(buf[0], '\0');
        CHECK(probe_untouched(&pr, 1));
        buf = probe_reset(&pr);
        CHECK_INT(smtp_message_last_error(NULL, buf, cap), 0);
        CHECK_INT(buf[0], '\0');
        CHECK_INT(smtp_message_last_error(NULL, NULL, 0), 0);
        NULL_HANDLE_REPLY(smtp_session_send_message(NULL, NULL, NULL, NULL, 0, buf, cap));
        NULL_HANDLE_REPLY(smtp_session_send_message_raw(NULL, MSG, MSG_LEN, NULL, NULL, 0, buf,
                                                        cap));
        CHECK_INT(smtp_session_send_message_raw(NULL, NULL, 0, NULL, NULL, 0, NULL, 0),
                  SMTPC_E_NULL);

        m = smtp_message_new();
        CHECK(m != NULL);
        CHECK_INT(smtp_message_set_from(m, NULL, NULL), SMTPC_E_NULL);
        CHECK_INT(smtp_message_set_from(m, "a@example.org\r\nBcc: x@example.org", NULL),
                  SMTPC_E_INVALID);
        CHECK_INT(smtp_message_set_from(m, "a@example.org", "Eve\r\nBcc: x@example.org"),
                  SMTPC_E_INVALID);
        CHECK_INT(smtp_message_set_from(m, "\xff@example.org", NULL), SMTPC_E_INVALID);
        CHECK(smtp_message_last_error(m, NULL, 0) > 0);
        CHECK_INT(smtp_message_set_sender(m, NULL, NULL), SMTPC_E_NULL);
        CHECK_INT(smtp_message_add_to(m, NULL, "x"), SMTPC_E_NULL);
        CHECK_INT(smtp_message_add_to(m, "not an address", NULL), SMTPC_E_INVALID);
        CHECK_INT(smtp_message_add_cc(m, NULL, NULL), SMTPC_E_NULL);
        CHECK_INT(smtp_message_add_bcc(m, NULL, NULL), SMTPC_E_NULL);
        CHECK_INT(smtp_message_add_reply_to(m, NULL, NULL), SMTPC_E_NULL);
        CHECK_INT(smtp_message_set_subject(m, NULL), SMTPC_E_NULL);
        CHECK_INT(smtp_message_set_subject(m, "a\nBcc: x@example.org"), SMTPC_E_INVALID);
        CHECK_INT(smtp_message_set_subject(m, "caf\xe9"), SMTPC_E_INVALID);
        CHECK_INT(smtp_message_add_header(m, NULL, "v"), SMTPC_E_NULL);
        CHECK_INT(smtp_message_add_header(m, "X-A", NULL), SMTPC_E_NULL);
        CHECK_INT(smtp_message_add_header(m, "X-A", "v\r\nBcc: x@example.org"), SMTPC_E_INVALID);
        CHECK_INT(smtp_message_add_header(m, "X A", "v"), SMTPC_E_INVALID);
        CHECK_INT(smtp_message_set_text(m, NULL, 1), SMTPC_E_NULL);
        CHECK_INT(smtp_message_set_text(m, NULL, 0), SMTPC_OK);
        CHECK_INT(smtp_message_last_error(m, NULL, 0), 0);
        CHECK_INT(smtp_message_set_text(m, "\xff", 1), SMTPC_E_INVALID);
        CHECK_INT(smtp_message_set_html(m, NULL, 1), SMTPC_E_NULL);
        CHECK_INT(smtp_message_attach(m, NULL, 1, NULL, "a.bin"), SMTPC_E_NULL);
        CHECK_INT(smtp_message_attach(m, bytes, sizeof bytes, NULL, NULL), SMTPC_E_NULL);
        CHECK_INT(smtp_message_attach(m, bytes, sizeof bytes, "no/such", "a.bin"), SMTPC_E_INVALID);
        CHECK_INT(smtp_message_attach_file(m, NULL, NULL, NULL), SMTPC_E_NULL);
        CHECK_INT(smtp_message_attach_file(m, "/nonexistent/smtpc-abuse", NULL, NULL), SMTPC_E_IO);
        CHECK_INT(smtp_message_add_inline(m, bytes, sizeof bytes, "image/png", NULL), SMTPC_E_NULL);
        CHECK_INT(smtp_message_add_inline_file(m, NULL, "image/png", "c"), SMTPC_E_NULL);
        CHECK_INT(smtp_message_add_inline_file(m, "/nonexistent/smtpc-abuse", NULL, "c"),
                  SMTPC_E_IO);
        CHECK_INT(smtp_message_set_dkim(m, "example.org", NULL, "key", NULL), SMTPC_E_NULL);
        CHECK_INT(smtp_message_set_dkim(m, "example.org", "s", "not a key", NULL),
                  SMTPC_E_INVALID);
        CHECK_INT(smtp_message_set_dkim(m, NULL, NULL, NULL, NULL), SMTPC_OK);
        CHECK_INT(smtp_message_set_raw(m, NULL, 1), SMTPC_E_NULL);
        /* No From yet: nothing to render, and why is kept. */
        buf = probe_reset(&pr);
        CHECK_INT(smtp_message_render(m, buf, cap), 0);
        CHECK_INT(buf[0], '\0');
        CHECK(smtp_message_last_error(m, NULL, 0) > 0);
        /* 0- and 1-byte buffers. */
        CHECK_INT(smtp_message_set_from(m, "a@example.org", NULL), SMTPC_OK);
        buf = probe_reset(&pr);
        CHECK(smtp_message_render(m, buf, 1) > 0);
        CHECK_INT(buf[0], '\0');
        CHECK(probe_untouched(&pr, 1));
        buf = probe_reset(&pr);
        CHECK(smtp_message_render(m, buf, 0) > 0);
        CHECK(probe_untouched(&pr, 0));
        smtp_message_free(m);
    }
    CHECK_INT(never_called, 0);
    CHECK_INT(rd.calls, 0);
}

/* ---- 2. NULL pointer arguments on a live handle -------------------------- */

/* The calls that must say SMTPC_E_NULL whether or not `s` is connected,
 * sending nothing and calling no callback. */
static void refuse_nulls(smtp_session *s)
{
    struct reader rd = {"x\r\n", 0, 0};
    const char *to_hole[2] = {"to@example.org", NULL};
    char buf[32];

    never_called = 0;
    /* batch_add */
    CHECK_INT(smtp_session_batch_add(s, NULL, ONE_TO, 1, MSG, MSG_LEN), SMTPC_E_NULL);
    CHECK_INT(smtp_session_batch_add(s, "f@example.org", NULL, 1, MSG, MSG_LEN), SMTPC_E_NULL);
    CHECK_INT(smtp_session_batch_add(s, "f@example.org", to_hole, 2, MSG, MSG_LEN),
              SMTPC_E_NULL);
    CHECK_INT(smtp_session_batch_add(s, "f@example.org", ONE_TO, 1, NULL, MSG_LEN),
              SMTPC_E_NULL);
    /* batch_send_cb: the callback is required. */
    CHECK_INT(smtp_session_batch_send_cb(s, NULL, NULL), SMTPC_E_NULL);
    /* batch result queries: a NULL reply buffer with cap > 0. */
    CHECK_INT(smtp_session_batch_code(s, 0, NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_batch_rcpt_code(s, 0, 0, NULL, 8), SMTPC_E_NULL);
    /* LMTP */
    CHECK_INT(smtp_session_lhlo(s, NULL, NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_lhlo(s, "client.example", NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_rcpt_data_code(s, 0, NULL, 8), SMTPC_E_NULL);
    /* auth: each string, and the reply buffer */
    CHECK_INT(smtp_session_auth(s, NULL, "u", "p", buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_auth(s, "PLAIN", NULL, "p", buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_auth(s, "PLAIN", "u", NULL, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_auth(s, "PLAIN", "u", "p", NULL, 8), SMTPC_E_NULL);
    /* sendmail_cb: sender, recipient list, a recipient, the callback, reply */
    CHECK_INT(smtp_session_sendmail_cb(s, NULL, ONE_TO, 1, read_never, NULL, -1, buf,
                                       sizeof buf),
              SMTPC_E_NULL);
    CHECK_INT(smtp_session_sendmail_cb(s, "f@example.org", NULL, 1, read_never, NULL, -1, buf,
                                       sizeof buf),
              SMTPC_E_NULL);
    CHECK_INT(smtp_session_sendmail_cb(s, "f@example.org", to_hole, 2, read_never, NULL, -1,
                                       buf, sizeof buf),
              SMTPC_E_NULL);
    CHECK_INT(smtp_session_sendmail_cb(s, "f@example.org", ONE_TO, 1, NULL, &rd, -1, buf,
                                       sizeof buf),
              SMTPC_E_NULL);
    CHECK_INT(smtp_session_sendmail_cb(s, "f@example.org", ONE_TO, 1, read_never, NULL, -1,
                                       NULL, 8),
              SMTPC_E_NULL);
    /* The older calls, so this file holds the whole matrix. */
    CHECK_INT(smtp_session_connect(s, NULL, 25, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_connect_tls(s, NULL, 465, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_has_extn(s, NULL), 0);
    CHECK_INT(smtp_session_extn_params(s, NULL, buf, sizeof buf), 0);
    CHECK_INT(smtp_session_mail(s, NULL, NULL, 0, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_rcpt(s, NULL, NULL, 0, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_mail(s, "a@b", NULL, 1, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_data(s, NULL, 3, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_putcmd(s, NULL, "x"), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_mail_options(s, NULL, 1), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_rcpt_options(s, NULL, 2), SMTPC_E_NULL);
    CHECK_INT(smtp_session_login(s, NULL, "p", buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_login(s, "u", NULL, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_sendmail(s, NULL, ONE_TO, 1, MSG, MSG_LEN, buf, sizeof buf),
              SMTPC_E_NULL);
    CHECK_INT(smtp_session_sendmail(s, "f@example.org", NULL, 1, MSG, MSG_LEN, buf, sizeof buf),
              SMTPC_E_NULL);
    CHECK_INT(smtp_session_sendmail(s, "f@example.org", to_hole, 2, MSG, MSG_LEN, buf,
                                    sizeof buf),
              SMTPC_E_NULL);
    CHECK_INT(smtp_session_sendmail(s, "f@example.org", ONE_TO, 1, NULL, 3, buf, sizeof buf),
              SMTPC_E_NULL);
    CHECK_INT(smtp_session_vrfy(s, NULL, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_expn(s, NULL, buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_docmd(s, NULL, "x", buf, sizeof buf), SMTPC_E_NULL);
    CHECK_INT(smtp_session_connect(s, "127.0.0.1", 25, NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_connect_tls(s, "127.0.0.1", 465, NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_helo(s, NULL, NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_ehlo(s, NULL, NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_starttls(s, NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_login(s, "u", "p", NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_sendmail(s, "f@example.org", ONE_TO, 1, MSG, MSG_LEN, NULL, 8),
              SMTPC_E_NULL);
    CHECK_INT(smtp_session_rcpt_code(s, 0, NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_vrfy(s, "a", NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_expn(s, "a", NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_help(s, NULL, NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_noop(s, NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_rset(s, NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_quit(s, NULL, 8), SMTPC_E_NULL);
    CHECK_INT(smtp_session_docmd(s, "NOOP", NULL, NULL, 8), SMTPC_E_NULL);
    CHECK_INT(never_called, 0);
    CHECK_INT(rd.calls, 0);
}

/* Optional pointers and buffer-less queries, on a handle not connected. */
static void accept_optional_nulls(smtp_session *s)
{
    CHECK_INT(smtp_session_set_dsn(s, NULL, NULL, NULL, 0), SMTPC_OK);
    CHECK_INT(smtp_session_set_ca_file(s, NULL), SMTPC_OK);
    CHECK_INT(smtp_session_set_local_hostname(s, NULL), SMTPC_OK);
    CHECK_INT(smtp_session_set_source_address(s, NULL, 0), SMTPC_OK);
    CHECK_INT(smtp_session_set_source_address(s, "example.org", 0), SMTPC_E_INVALID);
    CHECK_INT(smtp_session_set_source_address(s, "127.0.0.1", 0), SMTPC_OK);
    CHECK_INT(smtp_session_set_source_address(s, NULL, 0), SMTPC_OK);
    CHECK_INT(smtp_session_set_trace(s, NULL, NULL), SMTPC_OK);
    CHECK_INT(smtp_session_last_enhanced(s, NULL, 0), 0);
    CHECK_INT(smtp_session_last_enhanced(s, NULL, 8), 0); /* buf NULL: cap ignored */
    CHECK_INT(smtp_session_rcpt_enhanced(s, 0, NULL, 0), 0); /* no recipient */
    CHECK_INT(smtp_session_extn_count(s), 0);                 /* no EHLO yet */
    CHECK_INT(smtp_session_extn_name(s, 0, NULL, 0), 0);
    CHECK_INT(smtp_session_set_mail_options(s, NULL, 0), SMTPC_OK);
    CHECK_INT(smtp_session_set_rcpt_options(s, NULL, 0), SMTPC_OK);
    /* Not connected: state errors, nothing queued. */
    CHECK_INT(smtp_session_putcmd(s, "NOOP", NULL), SMTPC_E_STATE);
    CHECK_INT(smtp_session_getreply(s, NULL, 0), SMTPC_E_STATE);
    CHECK_INT(smtp_session_data(s, MSG, MSG_LEN, NULL, 0), SMTPC_E_STATE);
    CHECK_INT(smtp_session_last_reply(s, NULL, 8), 0);
    CHECK_INT(smtp_session_last_error(s, NULL, 8), smtp_session_last_error(s, NULL, 0));
    /* Nothing to read: out of range, whatever the buffer. */
    CHECK_INT(smtp_session_batch_count(s), 0);
    CHECK_INT(smtp_session_batch_code(s, 0, NULL, 0), SMTPC_E_INVALID);
    CHECK_INT(smtp_session_batch_failed_step(s, 0), SMTPC_E_INVALID);
    CHECK_INT(smtp_session_batch_outcome(s, 0), SMTPC_E_INVALID);
    CHECK_INT(smtp_session_outcome(s), SMTPC_OUTCOME_NONE);
    CHECK_INT(smtp_session_set_body_timeout_ms(s, 0), SMTPC_OK);
    CHECK_INT(smtp_session_batch_rcpt_count(s, 0), 0);
    CHECK_INT(smtp_session_batch_rcpt_code(s, 0, 0, NULL, 0), SMTPC_E_INVALID);
    CHECK_INT(smtp_session_rcpt_data_code(s, 0, NULL, 0), SMTPC_E_INVALID);
    CHECK_INT(smtp_session_waits(s), 0);
    CHECK_INT(smtp_session_is_connected(s), 0);
    CHECK_INT(smtp_session_is_tls(s), 0);
}

/* ---- 4. invalid UTF-8 ----------------------------------------------------- */

static const char *const BAD_UTF8[] = {
    "\xff",              /* never valid */
    "a\xc3",             /* truncated 2-byte sequence */
    "a\xe2\x82",         /* truncated 3-byte sequence */
    "\xc0\xaf",          /* overlong '/' */
    "\xed\xa0\x80",      /* a UTF-16 surrogate */
    "x\xf4\x90\x80\x80", /* above U+10FFFF */
};
#define N_BAD (sizeof BAD_UTF8 / sizeof BAD_UTF8[0])

/* Every string argument, one at a time. `connected`: whether `s` has a
 * connection (batch_send_cb is only called here when it has none). */
static void refuse_bad_utf8(smtp_session *s, int connected)
{
    size_t i;
    char buf[32];

    never_called = 0;
    for (i = 0; i < N_BAD; i++) {
        const char *b = BAD_UTF8[i];
        const char *to_bad[1];
        const char *to_mixed[2];
        struct source src;
        to_bad[0] = b;
        to_mixed[0] = "to@example.org";
        to_mixed[1] = b;

        CHECK_INT(smtp_session_batch_add(s, b, ONE_TO, 1, MSG, MSG_LEN), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_batch_add(s, "f@example.org", to_bad, 1, MSG, MSG_LEN),
                  SMTPC_E_INVALID);
        CHECK_INT(smtp_session_batch_add(s, "f@example.org", to_mixed, 2, MSG, MSG_LEN),
                  SMTPC_E_INVALID);
        CHECK_INT(smtp_session_set_dsn(s, b, NULL, NULL, 0), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_set_dsn(s, NULL, b, NULL, 0), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_set_dsn(s, NULL, NULL, b, 0), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_set_ca_file(s, b), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_set_local_hostname(s, b), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_set_source_address(s, b, 25), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_has_extn(s, b), 0);
        CHECK_INT(smtp_session_extn_params(s, b, buf, sizeof buf), 0);
        CHECK_INT(smtp_session_mail(s, b, NULL, 0, buf, sizeof buf), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_rcpt(s, b, NULL, 0, buf, sizeof buf), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_putcmd(s, b, NULL), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_putcmd(s, "NOOP", b), SMTPC_E_INVALID);
        {
            const char *bad_params[1];
            bad_params[0] = b;
            CHECK_INT(smtp_session_set_mail_options(s, bad_params, 1), SMTPC_E_INVALID);
            CHECK_INT(smtp_session_set_rcpt_options(s, bad_params, 1), SMTPC_E_INVALID);
            CHECK_INT(smtp_session_mail(s, "a@b", bad_params, 1, buf, sizeof buf),
                      SMTPC_E_INVALID);
        }
        CHECK_INT(smtp_session_lhlo(s, b, buf, sizeof buf), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_helo(s, b, buf, sizeof buf), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_ehlo(s, b, buf, sizeof buf), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_auth(s, b, "u", "p", buf, sizeof buf), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_auth(s, "PLAIN", b, "p", buf, sizeof buf), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_auth(s, "PLAIN", "u", b, buf, sizeof buf), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_login(s, b, "p", buf, sizeof buf), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_login(s, "u", b, buf, sizeof buf), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_sendmail(s, b, ONE_TO, 1, MSG, MSG_LEN, buf, sizeof buf),
                  SMTPC_E_INVALID);
        CHECK_INT(smtp_session_sendmail(s, "f@example.org", to_mixed, 2, MSG, MSG_LEN, buf,
                                        sizeof buf),
                  SMTPC_E_INVALID);
        CHECK_INT(smtp_session_sendmail_cb(s, b, ONE_TO, 1, read_never, NULL, -1, buf,
                                           sizeof buf),
                  SMTPC_E_INVALID);
        CHECK_INT(smtp_session_sendmail_cb(s, "f@example.org", to_bad, 1, read_never, NULL, -1,
                                           buf, sizeof buf),
                  SMTPC_E_INVALID);
        CHECK_INT(smtp_session_sendmail_cb(s, "f@example.org", to_mixed, 2, read_never, NULL,
                                           -1, buf, sizeof buf),
                  SMTPC_E_INVALID);
        CHECK_INT(smtp_session_vrfy(s, b, buf, sizeof buf), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_expn(s, b, buf, sizeof buf), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_help(s, b, buf, sizeof buf), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_docmd(s, b, NULL, buf, sizeof buf), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_docmd(s, "XARG", b, buf, sizeof buf), SMTPC_E_INVALID);
        /* Without a connection, batch_send_cb refuses before it asks its
         * callback for anything (test_batch_cb_bad_utf8 covers the rest). */
        if (!connected) {
            memset(&src, 0, sizeof src);
            src.from = b;
            src.to = ONE_TO;
            src.n_to = 1;
            src.count = 1;
            CHECK_INT(smtp_session_batch_send_cb(s, next_cb, &src), SMTPC_E_STATE);
            CHECK_INT(src.calls, 0);
        }
    }
    CHECK_INT(never_called, 0);
}

/* ---- 5. commands on a session with no connection -------------------------- */

static void refuse_unconnected(smtp_session *s)
{
    struct probe pr;
    struct source src;
    char buf[32];

    never_called = 0;
    CHECK_INT(smtp_session_is_connected(s), 0);
    CHECK_INT(smtp_session_is_tls(s), 0);
    CHECK_INT(smtp_session_lhlo(s, NULL, buf, sizeof buf), SMTPC_E_STATE);
    CHECK_INT(smtp_session_lhlo(s, "client.example", probe_reset(&pr), 1), SMTPC_E_STATE);
    CHECK_INT(pr.bytes[0], '\0');
    CHECK(probe_untouched(&pr, 1));
    CHECK_INT(smtp_session_auth(s, "PLAIN", "u", "p", buf, sizeof buf), SMTPC_E_STATE);
    CHECK_INT(smtp_session_auth(s, "XOAUTH2", "u", "token", NULL, 0), SMTPC_E_STATE);
    CHECK_INT(smtp_session_sendmail_cb(s, "f@example.org", ONE_TO, 1, read_never, NULL, -1, buf,
                                       sizeof buf),
              SMTPC_E_STATE);
    CHECK_INT(smtp_session_batch_add(s, "f@example.org", ONE_TO, 1, MSG, MSG_LEN), SMTPC_OK);
    CHECK_INT(smtp_session_batch_send(s), SMTPC_E_STATE);
    CHECK_INT(smtp_session_batch_send(s), SMTPC_E_STATE); /* empty queue: still no connection */
   memset(&src, 0, sizeof src);
    CHECK_INT(smtp_session_batch_send_cb(s, next_never, NULL), SMTPC_E_STATE);
    CHECK_INT(smtp_session_batch_clear(s), SMTPC_OK);
    CHECK_INT(smtp_session_helo(s, NULL, buf, sizeof buf), SMTPC_E_STATE);
    CHECK_INT(smtp_session_ehlo(s, NULL, buf, sizeof buf), SMTPC_E_STATE);
    CHECK_INT(smtp_session_starttls(s, buf, sizeof buf), SMTPC_E_STATE);
    CHECK_INT(smtp_session_login(s, "u", "p", buf, sizeof buf), SMTPC_E_STATE);
    CHECK_INT(smtp_session_sendmail(s, "f@example.org", ONE_TO, 1, MSG, MSG_LEN, buf,
                                    sizeof buf),
              SMTPC_E_STATE);
    CHECK_INT(smtp_session_vrfy(s, "a", buf, sizeof buf), SMTPC_E_STATE);
    CHECK_INT(smtp_session_expn(s, "a", buf, sizeof buf), SMTPC_E_STATE);
    CHECK_INT(smtp_session_help(s, NULL, buf, sizeof buf), SMTPC_E_STATE);
    CHECK_INT(smtp_session_noop(s, buf, sizeof buf), SMTPC_E_STATE);
    CHECK_INT(smtp_session_rset(s, buf, sizeof buf), SMTPC_E_STATE);
    CHECK_INT(smtp_session_quit(s, buf, sizeof buf), SMTPC_E_STATE);
    CHECK_INT(smtp_session_docmd(s, "NOOP", NULL, buf, sizeof buf), SMTPC_E_STATE);
    CHECK(smtp_session_last_error(s, NULL, 0) > 0);
    CHECK_INT(smtp_session_close(s), SMTPC_OK);
    CHECK_INT(smtp_session_is_connected(s), 0);
    CHECK_INT(never_called, 0);
}

/* ---- the scenarios ----------------------------------------------------- */

/* A fresh handle: setters, NULLs, bad UTF-8, no connection. */
static void test_fresh_handle(void)
{
    smtp_session *s = smtp_session_new();
    char buf[32];

    CHECK(s != NULL);
    accept_optional_nulls(s);
    refuse_nulls(s);
    refuse_bad_utf8(s, 0);
    /* connect with a host that is not UTF-8: refused before resolving. */
    CHECK_INT(smtp_session_connect(s, "\xff.example", 25, buf, sizeof buf), SMTPC_E_INVALID);
    CHECK_INT(smtp_session_connect_tls(s, "a\xc3", 465, buf, sizeof buf), SMTPC_E_INVALID);
    refuse_unconnected(s);

    /* Setters: documented values and refusals. */
    CHECK_INT(smtp_session_set_tls_policy(s, SMTPC_TLS_MANUAL), SMTPC_OK);
    CHECK_INT(smtp_session_set_tls_policy(s, SMTPC_TLS_IMPLICIT), SMTPC_OK);
    CHECK_INT(smtp_session_set_tls_policy(s, -1), SMTPC_E_INVALID);
    CHECK_INT(smtp_session_set_tls_policy(s, 4), SMTPC_E_INVALID);
    CHECK_INT(smtp_session_set_tls_policy(s, SMTPC_TLS_MANUAL), SMTPC_OK);
    CHECK_INT(smtp_session_set_allow_insecure_auth(s, 1), SMTPC_OK);
    CHECK_INT(smtp_session_set_allow_insecure_auth(s, 0), SMTPC_OK);
    CHECK_INT(smtp_session_set_chunking(s, 0), SMTPC_OK);
    CHECK_INT(smtp_session_set_chunking(s, 1), SMTPC_OK);
    CHECK_INT(smtp_session_set_binarymime(s, 1), SMTPC_OK);
    CHECK_INT(smtp_session_set_binarymime(s, 0), SMTPC_OK);
    CHECK_INT(smtp_session_set_dsn(s, "FULL", "id+1", "SUCCESS,FAILURE", 1), SMTPC_OK);
    CHECK_INT(smtp_session_set_dsn(s, "BOGUS", NULL, NULL, 0), SMTPC_E_INVALID);
    CHECK_INT(smtp_session_set_dsn(s, NULL, "a\r\nRSET", NULL, 0), SMTPC_E_INVALID);
    CHECK_INT(smtp_session_set_dsn(s, NULL, NULL, "NEVER,SUCCESS", 0), SMTPC_E_INVALID);
    CHECK_INT(smtp_session_set_dsn(s, NULL, NULL, NULL, 0), SMTPC_OK);
    smtp_session_free(s);
}

/* Connection refused: everything afterwards is SMTPC_E_STATE. */
static void test_after_failed_connect(void)
{
    smtp_session *s;
    char buf[32];
    uint16_t port;

    close(bind_loopback(&port)); /* bound, never listening: connections are refused */

    s = smtp_session_new();
    CHECK(s != NULL);
    CHECK_INT(smtp_session_set_timeout_ms(s, 5000), SMTPC_OK);
    CHECK_INT(smtp_session_connect(s, "127.0.0.1", port, buf, sizeof buf), SMTPC_E_CONNECT);
    CHECK_STR(buf, "");
    CHECK(smtp_session_last_error(s, NULL, 0) > 0);
    refuse_unconnected(s);
    refuse_nulls(s);
    CHECK_INT(smtp_session_connect_tls(s, "127.0.0.1", port, NULL, 0), SMTPC_E_CONNECT);
    refuse_unconnected(s);
    smtp_session_free(s);
}

/* A connected session: buffers of 0 and 1 bytes for every call that
 * writes one, NULLs and bad UTF-8 sending nothing, then QUIT. */
static void test_connected(void)
{
    static const char *const want =
        "EHLO client.example\n"
        "NOOP\n"
        "AUTH PLAIN AHUAcA==\n"
        "AUTH PLAIN AHUAcA==\n"
        "MAIL FROM:<f@example.org> BODY=8BITMIME\n" /* a stream: 8-bit unknown */
        "RCPT TO:<to@example.org>\n"
        "RCPT TO:<bad@example.org>\n"
        "DATA\n<body>\n"
        "MAIL FROM:<f@example.org>\n"
        "RCPT TO:<to@example.org>\n"
        "DATA\n<body>\n"
        "MAIL FROM:<f@example.org>\n"
        "RCPT TO:<bad@example.org>\n"
        "RSET\n"
        "LHLO client.example\n"
        "MAIL FROM:<f@example.org>\n"
        "RCPT TO:<to@example.org>\n"
        "RCPT TO:<bad@example.org>\n"
        "RCPT TO:<to2@example.org>\n"
        "DATA\n<body>\n"
        "QUIT\n";
    const char *to_two[2] = {"to@example.org", "bad@example.org"};
    const char *to_bad[1] = {"bad@example.org"};
    const char *to_three[3] = {"to@example.org", "bad@example.org", "to2@example.org"};
    struct recorder sv;
    struct probe pr;
    struct reader rd;
    smtp_session *s;
    char buf[128], *log;
    uint64_t waits;

    recorder_start(&sv, 1, converse); /* before the library allocates: see recorder_start */
    s = smtp_session_new();
    CHECK(s != NULL);
    CHECK_INT(smtp_session_set_timeout_ms(s, 10000), SMTPC_OK);
    CHECK_INT(smtp_session_set_local_hostname(s, "client.example"), SMTPC_OK);
    /* Capacity 1 on connect: only the NUL. */
    CHECK_INT(smtp_session_connect(s, "127.0.0.1", sv.port, probe_reset(&pr), 1), 220);
    CHECK_INT(pr.bytes[0], '\0');
    CHECK(probe_untouched(&pr, 1));
    CHECK_INT(smtp_session_is_connected(s), 1);
    CHECK_INT(smtp_session_is_tls(s), 0);
    CHECK_INT(smtp_session_connect(s, "127.0.0.1", sv.port, NULL, 0), SMTPC_E_STATE);

    refuse_nulls(s);
    refuse_bad_utf8(s, 1);
    CHECK_INT(smtp_session_waits(s), 1); /* the greeting only: nothing was sent */

   /* cap 0 with a real pointer: untouched. */
    CHECK_INT(smtp_session_ehlo(s, NULL, probe_reset(&pr), 0), 250);
    CHECK(probe_untouched(&pr, 0));
    CHECK_INT(smtp_session_has_extn(s, "enhancedstatuscodes"), 1);
    CHECK_INT(smtp_session_extn_params(s, "AUTH", probe_reset(&pr), 1), 11);
    CHECK_INT(pr.bytes[0], '\0');
    CHECK(probe_untouched(&pr, 1));
    refuse_nulls(s);
    refuse_bad_utf8(s, 1);

    CHECK_INT(smtp_session_noop(s, probe_reset(&pr), 1), 250);
    CHECK_INT(pr.bytes[0], '\0');
    CHECK(probe_untouched(&pr, 1));
    CHECK_INT(smtp_session_last_enhanced(s, probe_reset(&pr), 0), 5);
    CHECK(probe_untouched(&pr, 0));
    CHECK_INT(smtp_session_last_enhanced(s, probe_reset(&pr), 1), 5);
    CHECK_INT(pr.bytes[0], '\0');
    CHECK(probe_untouched(&pr, 1));
    CHECK_INT(smtp_session_last_enhanced(s, buf, sizeof buf), 5);
    CHECK_STR(buf, "2.0.0");

    /* auth: 1-byte then 0-byte reply buffers. */
    CHECK_INT(smtp_session_auth(s, "PLAIN", "u", "p", probe_reset(&pr), 1), 235);
    CHECK_INT(pr.bytes[0], '\0');
    CHECK(probe_untouched(&pr, 1));
    CHECK_INT(smtp_session_auth(s, "PLAIN", "u", "p", probe_reset(&pr), 0), 235);
    CHECK(probe_untouched(&pr, 0));
    CHECK_INT(smtp_session_auth(s, "NO-SUCH-MECH", "u", "p", buf, sizeof buf),
              SMTPC_E_INVALID);

    /* sendmail_cb with a 1-byte reply buffer; one recipient refused. */
    rd.text = "Subject: cb\r\n\r\nstreamed\r\n";
    rd.off = 0;
    rd.calls = 0;
    CHECK_INT(smtp_session_sendmail_cb(s, "f@example.org", to_two, 2, read_cb, &rd, -1,
                                       probe_reset(&pr), 1),
              250);
    CHECK_INT(pr.bytes[0], '\0');
    CHECK(probe_untouched(&pr, 1));
    CHECK(rd.calls >= 2); /* the text, then the end */
    CHECK_INT(smtp_session_rcpt_count(s), 2);
    CHECK_INT(smtp_session_rcpt_enhanced(s, 1, probe_reset(&pr), 0), 5);
    CHECK(probe_untouched(&pr, 0));
    CHECK_INT(smtp_session_rcpt_enhanced(s, 1, probe_reset(&pr), 1), 5);
    CHECK_INT(pr.bytes[0], '\0');
    CHECK(probe_untouched(&pr, 1));
    CHECK_INT(smtp_session_rcpt_enhanced(s, 1, buf, sizeof buf), 5);
    CHECK_STR(buf, "5.1.1");
    CHECK_INT(smtp_session_rcpt_enhanced(s, 0, NULL, 0), 5);
    CHECK_INT(smtp_session_rcpt_enhanced(s, 2, buf, sizeof buf), 0);
    CHECK_STR(buf, "");
    CHECK_INT(smtp_session_rcpt_code(s, 1, probe_reset(&pr), 1), 550);
    CHECK_INT(pr.bytes[0], '\0');
    CHECK(probe_untouched(&pr, 1));
    /* Not LMTP: no per-recipient delivery replies. */
    CHECK_INT(smtp_session_rcpt_data_code(s, 0, buf, sizeof buf), SMTPC_E_INVALID);

    /* A batch: one accepted message, one whose only recipient is refused. */
    CHECK_INT(smtp_session_batch_add(s, "f@example.org", ONE_TO, 1, MSG, MSG_LEN), SMTPC_OK);
    CHECK_INT(smtp_session_batch_add(s, "f@example.org", to_bad, 1, NULL, 0), SMTPC_OK);
    CHECK_INT(smtp_session_batch_add(s, "f@example.org", ONE_TO, 0, MSG, MSG_LEN),
              SMTPC_E_INVALID); /* no recipients */
    CHECK_INT(smtp_session_batch_add(s, "f@example.org", NULL, 0, MSG, MSG_LEN),
              SMTPC_E_INVALID);
    CHECK_INT(smtp_session_batch_send(s), SMTPC_OK);
    CHECK_INT(smtp_session_batch_count(s), 2);
    CHECK_INT(smtp_session_batch_code(s, 0, probe_reset(&pr), 0), 250);
    CHECK(probe_untouched(&pr, 0));
    CHECK_INT(smtp_session_batch_code(s, 0, probe_reset(&pr), 1), 250);
    CHECK_INT(pr.bytes[0], '\0');
    CHECK(probe_untouched(&pr, 1));
    CHECK_INT(smtp_session_batch_code(s, 1, buf, sizeof buf), 550);
    CHECK_INT(smtp_session_batch_failed_step(s, 0), SMTPC_STEP_NONE);
    CHECK_INT(smtp_session_batch_failed_step(s, 1), SMTPC_STEP_RCPT);
    CHECK_INT(smtp_session_batch_failed_step(s, 2), SMTPC_E_INVALID);
    CHECK_INT(smtp_session_batch_outcome(s, 0), SMTPC_OUTCOME_ACCEPTED);
    CHECK_INT(smtp_session_batch_outcome(s, 1), SMTPC_OUTCOME_REFUSED);
    CHECK_INT(smtp_session_batch_outcome(s, 2), SMTPC_E_INVALID);
    CHECK_INT(smtp_session_batch_code(s, 2, buf, sizeof buf), SMTPC_E_INVALID);
    CHECK_STR(buf, "");
    CHECK_INT(smtp_session_batch_rcpt_count(s, 1), 1);
    CHECK_INT(smtp_session_batch_rcpt_count(s, 2), 0);
    CHECK_INT(smtp_session_batch_rcpt_code(s, 1, 0, probe_reset(&pr), 1), 550);
    CHECK_INT(pr.bytes[0], '\0');
    CHECK(probe_untouched(&pr, 1));
    CHECK_INT(smtp_session_batch_rcpt_code(s, 1, 0, probe_reset(&pr), 0), 550);
    CHECK(probe_untouched(&pr, 0));
    CHECK_INT(smtp_session_batch_rcpt_code(s, 1, 1, buf, sizeof buf), SMTPC_E_INVALID);
    CHECK_INT(smtp_session_batch_clear(s), SMTPC_OK);
    CHECK_INT(smtp_session_batch_count(s), 0);
    /* An empty batch sends nothing. */
    CHECK_INT(smtp_session_batch_send(s), SMTPC_OK);
    CHECK_INT(smtp_session_batch_count(s), 0);

    /* LMTP: one delivery reply per accepted recipient (two of three). */
    CHECK_INT(smtp_session_lhlo(s, NULL, probe_reset(&pr), 1), 250);
    CHECK_INT(pr.bytes[0], '\0');
    CHECK(probe_untouched(&pr, 1));
    CHECK_INT(smtp_session_sendmail(s, "f@example.org", to_three, 3, MSG, MSG_LEN, NULL, 0),
              250);
    CHECK_INT(smtp_session_rcpt_data_code(s, 0, probe_reset(&pr), 1), 250);
    CHECK_INT(pr.bytes[0], '\0');
    CHECK(probe_untouched(&pr, 1));
    CHECK_INT(smtp_session_rcpt_data_code(s, 0, probe_reset(&pr), 0), 250);
    CHECK(probe_untouched(&pr, 0));
    CHECK_INT(smtp_session_rcpt_data_code(s, 1, buf, sizeof buf), SMTPC_E_INVALID); /* refused */
    CHECK_INT(smtp_session_rcpt_data_code(s, 2, buf, sizeof buf), 452);
    CHECK_STR(buf, "4.2.2 mailbox full"); /* smtplib keeps the enhanced code */
    CHECK_INT(smtp_session_rcpt_data_code(s, 3, buf, sizeof buf), SMTPC_E_INVALID);

    CHECK_INT(smtp_session_quit(s, probe_reset(&pr), 1), 221);
    CHECK_INT(pr.bytes[0], '\0');
    CHECK(probe_untouched(&pr, 1));
    waits = smtp_session_waits(s);
    CHECK(waits > 1);

    /* After QUIT: every command is SMTPC_E_STATE and sends nothing. */
    refuse_unconnected(s);
    refuse_nulls(s);
    refuse_bad_utf8(s, 0);
    CHECK_INT(smtp_session_waits(s), waits);

    log = recorder_finish(&sv);
    if (strcmp(log, want) != 0) {
        fprintf(stderr, "server received:\n%s--- wanted:\n%s", log, want);
        CHECK(!"the server received exactly what was expected");
    }
    n_checks++;
    free(log);
    smtp_session_free(s);
}

/* batch_send_cb whose callback yields invalid UTF-8 (sender, then a
 * recipient): that message alone is refused (its batch_code is
 * SMTPC_E_INVALID), no MAIL FROM is sent for it, the batch itself
 * succeeds and the connection stays open. */
static void test_batch_cb_bad_utf8(void)
{
    static const char *const want = "EHLO client.example\n"
                                    "EHLO client.example\n";
    const char *to_mixed[2] = {"to@example.org", "a\xc3"};
    struct recorder sv;
    struct source src;
    smtp_session *s;
    char *log;
    int round;

    recorder_start(&sv, 2, converse);
    s = smtp_session_new();
    CHECK(s != NULL);
    CHECK_INT(smtp_session_set_timeout_ms(s, 10000), SMTPC_OK);
    CHECK_INT(smtp_session_set_local_hostname(s, "client.example"), SMTPC_OK);
    for (round = 0; round < 2; round++) {
        CHECK_INT(smtp_session_connect(s, "127.0.0.1", sv.port, NULL, 0), 220);
        memset(&src, 0, sizeof src);
        src.from = round == 0 ? "\xff" : "f@example.org";
        src.to = round == 0 ? ONE_TO : to_mixed;
        src.n_to = round == 0 ? 1 : 2;
        src.msg = MSG;
        src.msg_len = MSG_LEN;
        src.count = 1;
        CHECK_INT(smtp_session_batch_send_cb(s, next_cb, &src), SMTPC_OK);
        CHECK_INT(src.calls, 2);
        CHECK_INT((int)smtp_session_batch_count(s), 1);
        CHECK_INT(smtp_session_batch_code(s, 0, NULL, 0), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_batch_failed_step(s, 0), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_is_connected(s), 1);
        CHECK_INT(smtp_session_close(s), SMTPC_OK);
    }
    log = recorder_finish(&sv);
    if (strcmp(log, want) != 0) {
        fprintf(stderr, "server received:\n%s--- wanted:\n%s", log, want);
        CHECK(!"the server received exactly what was expected");
    }
    free(log);
    smtp_session_free(s);
}

/* ==== SASL: smtp_session_auth_callback, smtp_session_set_initial_response ====
 * (src/ffi/sasl.rs). NULLs, bad mechanism names and callback aborts: each
 * refused with the documented code, and the scripted server below sees
 * exactly what should have been sent. */

/* EHLO offers AUTH PLAIN X-MINE; an AUTH with an initial response gets
 * 235; one without gets an empty 334, then 501 for "*" or 235. */
static void converse_sasl(int conn, int log)
{
    char line[2048];

    send_text(conn, "220 sasl.test ready\r\n");
    while (next_command(conn, log, line, sizeof line)) {
        if (starts_with(line, "EHLO ")) {
            send_text(conn, "250-sasl.test\r\n250 AUTH PLAIN X-MINE\r\n");
        } else if (starts_with(line, "AUTH ")) {
            if (strchr(line + 5, ' ') != NULL) {
                send_text(conn, "235 2.7.0 ok\r\n");
                continue;
            }
            send_text(conn, "334 \r\n");
            if (!next_command(conn, log, line, sizeof line))
                break;
            send_text(conn, strcmp(line, "*") == 0 ? "501 5.7.0 cancelled\r\n"
                                                   : "235 2.7.0 ok\r\n");
        } else if (strcmp(line, "QUIT") == 0) {
            send_text(conn, "221 2.0.0 bye\r\n");
            break;
        } else {
            send_text(conn, "250 2.0.0 ok\r\n");
        }
    }
}

/* PLAIN's response "\0u\0p" (its base64, as logged: AHUACA==), an abort
 * (-1) at call `abort_at`, SMTPC_SASL_NO_RESPONSE to the initial call
 * when `no_initial`. */
struct sasl_state {
    int calls;
    int abort_at;
    int no_initial;
    int bad_challenge; /* a challenge without its NUL terminator */
};

static int64_t sasl_cb(void *user, const char *challenge, size_t challenge_len, char *response,
                       size_t response_cap)
{
    static const char plain[] = "\0u\0p";
    struct sasl_state *st = (struct sasl_state *)user;
    int call = st->calls++;

    if (challenge != NULL && challenge[challenge_len] != '\0')
        st->bad_challenge++;
    if (call == st->abort_at)
        return -1;
    if (challenge == NULL && st->no_initial)
        return SMTPC_SASL_NO_RESPONSE;
    if (response_cap >= sizeof plain - 1)
        memcpy(response, plain, sizeof plain - 1);
    return (int64_t)(sizeof plain - 1);
}

static int64_t sasl_never(void *user, const char *challenge, size_t challenge_len,
                          char *response, size_t response_cap)
{
    (void)user;
    (void)challenge;
    (void)challenge_len;
    (void)response;
    (void)response_cap;
    never_called++;
    return -1;
}

/* The refusals that hold whether or not `s` is connected: nothing sent,
 * the callback never called. */
static void refuse_sasl_args(smtp_session *s)
{
    static const char *const bad_names[] = {"", "PLAIN LOGIN", "PLAIN\r\nNOOP", "PLAIN\n",
                                            "A-MECHANISM-NAME-OF-21", "X=Y"};
    struct probe pr;
    size_t i;

    never_called = 0;
    CHECK_INT(smtp_session_auth_callback(s, NULL, sasl_never, NULL, NULL, 0), SMTPC_E_NULL);
    CHECK_INT(smtp_session_auth_callback(s, "PLAIN", NULL, NULL, NULL, 0), SMTPC_E_NULL);
    CHECK_INT(smtp_session_auth_callback(s, "PLAIN", sasl_never, NULL, NULL, 8), SMTPC_E_NULL);
    for (i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        CHECK_INT(smtp_session_auth_callback(s, bad_names[i], sasl_never, NULL,
                                             probe_reset(&pr), 1),
                  SMTPC_E_INVALID);
        CHECK_INT(pr.bytes[0], '\0');
        CHECK(probe_untouched(&pr, 1));
    }
    for (i = 0; i < N_BAD; i++)
        CHECK_INT(smtp_session_auth_callback(s, BAD_UTF8[i], sasl_never, NULL, NULL, 0),
                  SMTPC_E_INVALID);
    CHECK_INT(never_called, 0);
}

static void test_sasl(void)
{
    static const char *const want = "EHLO client.example\n"
                                    "AUTH PLAIN AHUAcA==\n"
                                    "AUTH PLAIN\n"
                                    "AHUACA==\n"
                                    "AUTH PLAIN\n"
                                    "*\n"
                                    "NOOP\n"
                                    "QUIT\n";
    struct recorder sv;
    struct sasl_state st;
    struct probe pr;
    smtp_session *s;
    char buf[32];
    char *log;

    recorder_start(&sv, 1, converse_sasl);

    /* A NULL handle. */
    never_called = 0;
    CHECK_INT(smtp_session_set_initial_response(NULL, 0), SMTPC_E_NULL);
    CHECK_INT(smtp_session_auth_callback(NULL, "PLAIN", sasl_never, NULL, probe_reset(&pr), 16),
              SMTPC_E_NULL);
    CHECK_INT(pr.bytes[0], '\0');
    CHECK(probe_untouched(&pr, 1));
    CHECK_INT(smtp_session_auth_callback(NULL, NULL, NULL, NULL, NULL, 0), SMTPC_E_NULL);

    s = smtp_session_new();
    CHECK(s != NULL);
    CHECK_INT(smtp_session_set_timeout_ms(s, 10000), SMTPC_OK);
    CHECK_INT(smtp_session_set_local_hostname(s, "client.example"), SMTPC_OK);
    CHECK_INT(smtp_session_set_initial_response(s, 1), SMTPC_OK);

    /* Not connected. */
    refuse_sasl_args(s);
    CHECK_INT(smtp_session_auth_callback(s, "PLAIN", sasl_never, NULL, buf, sizeof buf),
              SMTPC_E_STATE);
    CHECK_INT(never_called, 0);

    CHECK_INT(smtp_session_connect(s, "127.0.0.1", sv.port, NULL, 0), 220);
    refuse_sasl_args(s); /* before EHLO: none is sent for a refused call */
    /* Not offered: the callback is never called. */
    CHECK_INT(smtp_session_auth_callback(s, "X-OTHER", sasl_never, NULL, buf, sizeof buf),
              SMTPC_E_NOT_SUPPORTED);
    CHECK_INT(never_called, 0);

    /* Abort at the initial response: nothing sent. */
    memset(&st, 0, sizeof st);
    st.abort_at = 0;
    CHECK_INT(smtp_session_auth_callback(s, "PLAIN", sasl_cb, &st, buf, sizeof buf),
              SMTPC_E_CALLBACK);
    CHECK_INT(st.calls, 1);
    CHECK(smtp_session_last_error(s, NULL, 0) > 0);
    /* The initial response: AUTH PLAIN AHUAcA== -> 235. */
    memset(&st, 0, sizeof st);
    st.abort_at = -1;
    CHECK_INT(smtp_session_auth_callback(s, "plain", sasl_cb, &st, buf, sizeof buf), 235);
    CHECK_INT(st.calls, 1);
    /* Without initial response: AUTH PLAIN, 334, then the response. */
    CHECK_INT(smtp_session_set_initial_response(s, 0), SMTPC_OK);
    memset(&st, 0, sizeof st);
    st.abort_at = -1;
    CHECK_INT(smtp_session_auth_callback(s, "PLAIN", sasl_cb, &st, buf, sizeof buf), 235);
    CHECK_INT(st.calls, 1);
    CHECK_INT(st.bad_challenge, 0);
    /* Abort at the challenge: "*" cancels (501), the call says
     * SMTPC_E_CALLBACK and the connection stays in step. */
    memset(&st, 0, sizeof st);
    st.abort_at = 0;
    CHECK_INT(smtp_session_auth_callback(s, "PLAIN", sasl_cb, &st, buf, sizeof buf),
              SMTPC_E_CALLBACK);
    CHECK_INT(st.calls, 1);
    CHECK_INT(smtp_session_set_initial_response(s, 1), SMTPC_OK);
    CHECK_INT(smtp_session_noop(s, NULL, 0), 250);
    CHECK_INT(smtp_session_quit(s, NULL, 0), 221);

    log = recorder_finish(&sv);
    if (strcmp(log, want) != 0) {
        fprintf(stderr, "server received:\n%s--- wanted:\n%s", log, want);
        CHECK(!"the server received exactly what was expected");
    }
    free(log);
    smtp_session_free(s);
}

/* ==== end of the SASL block ==== */

/* ==== TLS options: smtp_session_set_client_cert, _set_ca_dir,
 * _set_tls_min_version, _set_tls_server_name (src/ffi/tls.rs) ====
 * Setters only: nothing is sent. A NULL handle, NULL and bad strings, CR
 * and LF, out-of-range versions and missing files each give the documented
 * code; a missing file's path is in last_error; a refused call changes
 * nothing and leaves the handle usable. */

/* Whether last_error mentions `what`. */
static int last_error_has(smtp_session *s, const char *what)
{
    char err[512];
    smtp_session_last_error(s, err, sizeof err);
    return strstr(err, what) != NULL;
}

static void test_tls_options(void)
{
    static const char *const missing = "/nonexistent-smtpc-dir/client.pem";
    static const char *const bad_names[] = {"", "two words", "mx\r\nRCPT", "mx\n", "mx\r"};
    static const int bad_versions[] = {1, 2, 3, 12, 13, 0x0300, 0x0301, 0x0302, 0x0305, -1, 0x7fffffff};
    smtp_session *s;
    size_t i;

    /* A NULL handle. */
    CHECK_INT(smtp_session_set_client_cert(NULL, NULL, NULL), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_client_cert(NULL, "c.pem", "k.pem"), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_ca_dir(NULL, NULL), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_ca_dir(NULL, "/etc/ssl/certs"), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_tls_min_version(NULL, SMTPC_TLS_1_2), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_tls_server_name(NULL, NULL), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_tls_server_name(NULL, "localhost"), SMTPC_E_NULL);

    s = smtp_session_new();
    CHECK(s != NULL);
    /* Optional NULLs clear; a key without its certificate is a NULL. */
    CHECK_INT(smtp_session_set_client_cert(s, NULL, NULL), SMTPC_OK);
    CHECK_INT(smtp_session_set_client_cert(s, NULL, "k.pem"), SMTPC_E_NULL);
    CHECK_INT(smtp_session_set_ca_dir(s, NULL), SMTPC_OK);
    CHECK_INT(smtp_session_set_tls_server_name(s, NULL), SMTPC_OK);
    /* Invalid UTF-8 in each string. */
    for (i = 0; i < N_BAD; i++) {
        const char *b = BAD_UTF8[i];
        CHECK_INT(smtp_session_set_client_cert(s, b, NULL), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_set_client_cert(s, "c.pem", b), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_set_ca_dir(s, b), SMTPC_E_INVALID);
        CHECK_INT(smtp_session_set_tls_server_name(s, b), SMTPC_E_INVALID);
    }
    /* CR and LF in paths, bad names. */
    CHECK_INT(smtp_session_set_client_cert(s, "/tmp/c\r\n.pem", NULL), SMTPC_E_INVALID);
    CHECK_INT(smtp_session_set_client_cert(s, "/tmp/c.pem", "/tmp/k\n.pem"), SMTPC_E_INVALID);
    CHECK_INT(smtp_session_set_ca_dir(s, "/tmp/ca\r"), SMTPC_E_INVALID);
    for (i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
        CHECK_INT(smtp_session_set_tls_server_name(s, bad_names[i]), SMTPC_E_INVALID);
    CHECK_INT(smtp_session_set_tls_server_name(s, "localhost"), SMTPC_OK);
    CHECK_INT(smtp_session_set_tls_server_name(s, "127.0.0.1"), SMTPC_OK);
    /* Versions: the two constants and 0, nothing else. */
    CHECK_INT(smtp_session_set_tls_min_version(s, SMTPC_TLS_1_2), SMTPC_OK);
    CHECK_INT(smtp_session_set_tls_min_version(s, SMTPC_TLS_1_3), SMTPC_OK);
    CHECK_INT(smtp_session_set_tls_min_version(s, 0), SMTPC_OK);
    for (i = 0; i < sizeof bad_versions / sizeof bad_versions[0]; i++)
        CHECK_INT(smtp_session_set_tls_min_version(s, bad_versions[i]), SMTPC_E_INVALID);
    /* Missing files: SMTPC_E_TLS when set, the path in last_error. */
    CHECK_INT(smtp_session_set_client_cert(s, missing, NULL), SMTPC_E_TLS);
    CHECK(last_error_has(s, missing));
    CHECK_INT(smtp_session_set_client_cert(s, missing, missing), SMTPC_E_TLS);
    CHECK(last_error_has(s, missing));
    CHECK_INT(smtp_session_set_ca_dir(s, "/nonexistent-smtpc-dir"), SMTPC_E_TLS);
    CHECK(last_error_has(s, "/nonexistent-smtpc-dir"));
    /* A directory as a certificate, a file as a CA directory. */
    CHECK_INT(smtp_session_set_client_cert(s, "/", NULL), SMTPC_E_TLS);
    CHECK_INT(smtp_session_set_ca_dir(s, "/dev/null"), SMTPC_E_TLS);
    /* Still usable. */
    CHECK_INT(smtp_session_set_tls_server_name(s, NULL), SMTPC_OK);
    CHECK_INT(smtp_session_is_connected(s), 0);
    smtp_session_free(s);
}

/* ==== end of the TLS options block ==== */

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_null_handle();
    test_fresh_handle();
    test_after_failed_connect();
    test_connected();
    test_batch_cb_bad_utf8();
    test_sasl(); /* the SASL block */
    test_tls_options(); /* the TLS options block */
    printf("abuse: %d passed, 0 failed\n", n_checks);
    return 0;
}
