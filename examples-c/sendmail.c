/*
 * sendmail.c - build one message and send it, showing the SMTP transcript.
 *
 * The C version of smtplib's first example, with the message built as the
 * article builds it (email.mime.text.MIMEText, email.utils.formataddr):
 *
 *     msg = MIMEText(body)
 *     msg['From'] = formataddr(('libsmtpc example', fromaddr))
 *     msg['To'] = formataddr(('Recipient', toaddr))
 *     msg['Subject'] = 'libsmtpc sendmail example'
 *     server = smtplib.SMTP('localhost')
 *     server.set_debuglevel(1)
 *     server.send_message(msg)
 *     server.quit()
 *
 * Usage: sendmail [host [port]]
 *   host defaults to $SMTP_HOST or "localhost", port to $SMTP_PORT or 25.
 *   $SMTP_FROM and $SMTP_TO override the From and To addresses (and so the
 *   envelope, which send_message takes from the header fields).
 *
 * The library writes the transcript (debug level 1) to stderr; the result
 * goes to stdout. Exit status is 0 only if the message was accepted.
 */
#include <smtpc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLY_CAP 512
#define N_TO 1

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return (v != NULL && v[0] != '\0') ? v : fallback;
}

/* Parses a TCP port; returns 0 for anything that is not 1..65535. */
static uint16_t parse_port(const char *text)
{
    char *end = NULL;
    unsigned long v = strtoul(text, &end, 10);
    if (end == text || *end != '\0' || v == 0 || v > 65535)
        return 0;
    return (uint16_t)v;
}

/* Prints a library error with both the generic and the specific message. */
static void print_error(const smtp_session *s, const char *what, int rc)
{
    char detail[REPLY_CAP];
    smtp_session_last_error(s, detail, sizeof detail);
    fprintf(stderr, "%s failed: %s (%d)%s%s\n", what, smtpc_strerror(rc), rc,
            detail[0] != '\0' ? ": " : "", detail);
}

/* The same for a failed builder call, whose detail the message keeps. */
static void print_message_error(const smtp_message *m, const char *what, int rc)
{
    char detail[REPLY_CAP];
    smtp_message_last_error(m, detail, sizeof detail);
    fprintf(stderr, "%s failed: %s (%d)%s%s\n", what, smtpc_strerror(rc), rc,
            detail[0] != '\0' ? ": " : "", detail);
}

/*
 * Builds the message: From and To with display names (RFC 2047-encoded
 * by the library when they are not ASCII), a Subject and a text body.
 * Date, Message-ID and MIME-Version are added when it is sent. Returns
 * NULL (after printing why) if an address is refused.
 */
static smtp_message *build_message(const char *from, const char *to)
{
    static const char body[] =
        "Hello from the libsmtpc sendmail example.\n"
        "This message was built with smtp_message_* and sent with\n"
        "smtp_session_send_message().\n";
    smtp_message *m = smtp_message_new();
    int rc;

    if (m == NULL) {
        fprintf(stderr, "smtp_message_new failed\n");
        return NULL;
    }
    if ((rc = smtp_message_set_from(m, from, "libsmtpc example")) != SMTPC_OK) {
        print_message_error(m, "set_from", rc);
    } else if ((rc = smtp_message_add_to(m, to, "Recipient")) != SMTPC_OK) {
        print_message_error(m, "add_to", rc);
    } else if ((rc = smtp_message_set_subject(m, "libsmtpc sendmail example")) != SMTPC_OK) {
        print_message_error(m, "set_subject", rc);
    } else if ((rc = smtp_message_set_text(m, body, sizeof body - 1)) != SMTPC_OK) {
        print_message_error(m, "set_text", rc);
    } else {
        return m;
    }
    smtp_message_free(m);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *host = argc > 1 ? argv[1] : env_or("SMTP_HOST", "localhost");
    const char *port_text = argc > 2 ? argv[2] : env_or("SMTP_PORT", "25");
    const char *from = env_or("SMTP_FROM", "sender@example.org");
    const char *to[N_TO];
    char reply[REPLY_CAP];
    smtp_session *s = NULL;
    smtp_message *m = NULL;
    uint16_t port;
    int rc, status = 1;
    size_t i, count;

    to[0] = env_or("SMTP_TO", "recipient@example.org");

    if (argc > 3) {
        fprintf(stderr, "usage: %s [host [port]]\n", argv[0]);
        return 2;
    }
    port = parse_port(port_text);
    if (port == 0) {
        fprintf(stderr, "%s: bad port '%s'\n", argv[0], port_text);
        return 2;
    }

    m = build_message(from, to[0]);
    if (m == NULL)
        return 2;

    s = smtp_session_new();
    if (s == NULL) {
        fprintf(stderr, "smtp_session_new failed\n");
        smtp_message_free(m);
        return 1;
    }

    rc = smtp_session_set_debuglevel(s, 1);
    if (rc != SMTPC_OK) {
        print_error(s, "set_debuglevel", rc);
        goto out;
    }

    rc = smtp_session_connect(s, host, port, reply, sizeof reply);
    if (rc < 0) {
        print_error(s, "connect", rc);
        goto out;
    }
    if (rc != 220) {
        /* smtplib raises SMTPConnectError for any greeting but 220. */
        fprintf(stderr, "connect: unexpected greeting %d %s\n", rc, reply);
        goto quit;
    }

    /* send_message() sends EHLO (or HELO) itself when none was sent yet,
     * and takes the envelope from the From and To fields (NULL, NULL, 0),
     * as smtplib's send_message does. */
    rc = smtp_session_send_message(s, m, NULL, NULL, 0, reply, sizeof reply);
    if (rc < 0) {
        print_error(s, "send_message", rc);
        goto quit;
    }
    printf("send_message: %d %s\n", rc, reply);

    /* One code per recipient given, in order, like the refused-recipients
     * dict of smtplib but including the accepted ones. */
    count = smtp_session_rcpt_count(s);
    for (i = 0; i < count; i++) {
        int code = smtp_session_rcpt_code(s, i, reply, sizeof reply);
        if (code < 0) {
            print_error(s, "rcpt_code", code);
            goto quit;
        }
        printf("  %s: %d %s\n", i < N_TO ? to[i] : "?", code, reply);
    }

    if (rc >= 200 && rc < 300 && smtp_session_failed_step(s) == SMTPC_STEP_NONE)
        status = 0;
    else
        fprintf(stderr, "message not accepted (failed step %d)\n",
                smtp_session_failed_step(s));

quit:
    rc = smtp_session_quit(s, reply, sizeof reply);
    if (rc == SMTPC_E_STATE && status != 0) {
        /* After some failures (e.g. the server hung up) the library has
         * already closed the connection: nothing left to QUIT. */
    } else if (rc < 0) {
        print_error(s, "quit", rc);
        status = 1;
    } else {
        printf("quit: %d %s\n", rc, reply);
    }
out:
    smtp_session_free(s);
    smtp_message_free(m);
    return status;
}
