/*
 * authenticated.c - EHLO, STARTTLS, EHLO again, AUTH, send, QUIT.
 *
 * The C version of smtplib's authenticated-sending example, the message
 * built as the article builds it, with a small attachment:
 *
 *     msg = MIMEMultipart()
 *     msg['From'] = formataddr(('libsmtpc example', fromaddr))
 *     msg['To'] = formataddr(('Recipient', toaddr))
 *     msg['Subject'] = 'libsmtpc authenticated example'
 *     msg.attach(MIMEText(body))
 *     msg.attach(attachment)          # notes.txt
 *     server = smtplib.SMTP(servername, port)
 *     server.ehlo()
 *     if server.has_extn('STARTTLS'):
 *         server.starttls()
 *         server.ehlo()   # re-identify ourselves over TLS
 *     if server.has_extn('AUTH'):
 *         server.login(username, password)
 *     server.send_message(msg)
 *     server.quit()
 *
 * Usage: authenticated [host [port [user]]]
 *   host: $SMTP_HOST or "localhost"; port: $SMTP_PORT or 587;
 *   user: $SMTP_USER. The password comes from $SMTP_PASSWORD, or else is
 *   read from the terminal (/dev/tty) with echo turned off.
 *   $SMTP_CA_FILE names a PEM file of CA certificates to trust for STARTTLS.
 *   $SMTP_FROM / $SMTP_TO override the From and To addresses (and so the
 *   envelope, which send_message takes from them).
 *
 * Prints each step's reply code and text. Exit status 0 only if every step
 * succeeded and the message was accepted.
 */
#define _POSIX_C_SOURCE 200809L /* fileno() and termios under -std=c99 */

#include <smtpc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>

#define REPLY_CAP 512
#define N_TO 1
#define PASSWORD_CAP 256

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return (v != NULL && v[0] != '\0') ? v : fallback;
}

static uint16_t parse_port(const char *text)
{
    char *end = NULL;
    unsigned long v = strtoul(text, &end, 10);
    if (end == text || *end != '\0' || v == 0 || v > 65535)
        return 0;
    return (uint16_t)v;
}

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
 * Builds the message: From and To with display names, a Subject, a text
 * body and a small attachment (a file made in memory; for a file on disk,
 * smtp_message_attach_file streams it while sending). Returns NULL (after
 * printing why) if an address is refused.
 */
static smtp_message *build_message(const char *from, const char *to)
{
    static const char body[] = "This message was sent over STARTTLS after AUTH.\n"
                               "It carries a small attachment, notes.txt.\n";
    static const char notes[] = "libsmtpc attachment\r\n"
                                "Attached with smtp_message_attach().\r\n";
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
    } else if ((rc = smtp_message_set_subject(m, "libsmtpc authenticated example")) != SMTPC_OK) {
        print_message_error(m, "set_subject", rc);
    } else if ((rc = smtp_message_set_text(m, body, sizeof body - 1)) != SMTPC_OK) {
        print_message_error(m, "set_text", rc);
    } else if ((rc = smtp_message_attach(m, notes, sizeof notes - 1, "text/plain; charset=utf-8",
                                         "notes.txt")) != SMTPC_OK) {
        print_message_error(m, "attach", rc);
    } else {
        return m;
    }
    smtp_message_free(m);
    return NULL;
}

/* Prints "step: code text"; a multi-line reply's further lines (joined by
 * '\n' by the library) are indented under the first. */
static void print_reply(const char *step, int rc, const char *text)
{
    printf("%s: %d ", step, rc);
    for (; *text != '\0'; text++) {
        putchar(*text);
        if (*text == '\n')
            fputs("    ", stdout);
    }
    putchar('\n');
}

/*
 * Prints "step: code text" for a command's result. An EHLO reply can be
 * longer than the fixed buffer, so the full length is asked for with
 * smtp_session_last_reply(s, NULL, 0) and the text fetched again into a
 * buffer of that size when it did not fit. Returns rc, or -1 on error.
 */
static int report(const smtp_session *s, const char *step, int rc, const char *reply)
{
    size_t len;
    char *full;

    if (rc < 0) {
        print_error(s, step, rc);
        return -1;
    }
    len = smtp_session_last_reply(s, NULL, 0);
    if (len < REPLY_CAP) {
        print_reply(step, rc, reply);
        return rc;
    }
    full = (char *)malloc(len + 1);
    if (full == NULL) {
        print_reply(step, rc, reply);
        printf("    [truncated]\n");
        return rc;
    }
    smtp_session_last_reply(s, full, len + 1);
    print_reply(step, rc, full);
    free(full);
    return rc;
}

/* Overwrites a secret in a way the compiler may not drop as a dead store. */
static void wipe(char *p, size_t n)
{
    volatile char *v = p;
    while (n-- > 0)
        *v++ = 0;
}

/*
 * Reads a password from the controlling terminal without echo, like
 * getpass(3) (which POSIX withdrew). Returns 0 on success.
 */
static int read_password(const char *prompt, char *buf, size_t cap)
{
    FILE *tty = fopen("/dev/tty", "r+");
    struct termios saved, quiet;
    int restore = 0, ok;
    size_t len;

    if (tty == NULL)
        return -1;
    if (tcgetattr(fileno(tty), &saved) == 0) {
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        restore = tcsetattr(fileno(tty), TCSAFLUSH, &quiet) == 0;
    }
    fputs(prompt, tty);
    fflush(tty);
    ok = fgets(buf, (int)cap, tty) != NULL;
    if (restore)
        tcsetattr(fileno(tty), TCSAFLUSH, &saved);
    fputc('\n', tty); /* the user's Enter was not echoed */
    fclose(tty);
    if (!ok)
        return -1;
    len = strlen(buf);
    if (len > 0 && buf[len - 1] == '\n')
        buf[--len] = '\0';
    return 0;
}

int main(int argc, char **argv)
{
    const char *host = argc > 1 ? argv[1] : env_or("SMTP_HOST", "localhost");
    const char *port_text = argc > 2 ? argv[2] : env_or("SMTP_PORT", "587");
    const char *user = argc > 3 ? argv[3] : env_or("SMTP_USER", NULL);
    const char *ca_file = env_or("SMTP_CA_FILE", NULL);
    const char *from = env_or("SMTP_FROM", "sender@example.org");
    const char *to[N_TO];
    char password[PASSWORD_CAP];
    char reply[REPLY_CAP];
    smtp_session *s = NULL;
    smtp_message *m = NULL;
    uint16_t port;
    int rc, status = 1;
    size_t i, count;

    to[0] = env_or("SMTP_TO", "recipient@example.org");
    password[0] = '\0';

    if (argc > 4) {
        fprintf(stderr, "usage: %s [host [port [user]]]\n", argv[0]);
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

    /* TLS settings are taken when STARTTLS runs; set them up front. */
    if (ca_file != NULL) {
        rc = smtp_session_set_ca_file(s, ca_file);
        if (rc != SMTPC_OK) {
            print_error(s, "set_ca_file", rc);
            goto out;
        }
    }

    rc = smtp_session_connect(s, host, port, reply, sizeof reply);
    if (report(s, "connect", rc, reply) < 0)
        goto out; /* not connected: nothing to QUIT */
    if (rc != 220)
        goto quit;

    rc = smtp_session_ehlo(s, NULL, reply, sizeof reply);
    if (report(s, "ehlo", rc, reply) != 250)
        goto quit;

    if (smtp_session_has_extn(s, "starttls")) {
        rc = smtp_session_starttls(s, reply, sizeof reply);
        if (report(s, "starttls", rc, reply) != 220)
            goto quit;
        /* The server forgets everything it learnt before TLS (RFC 3207),
         * so identify again and learn the extensions offered under TLS. */
        rc = smtp_session_ehlo(s, NULL, reply, sizeof reply);
        if (report(s, "ehlo", rc, reply) != 250)
            goto quit;
    } else {
        printf("starttls: not offered, continuing without TLS\n");
    }

    if (smtp_session_has_extn(s, "auth")) {
        if (user == NULL) {
            printf("login: AUTH offered but no user given (argv[3] or SMTP_USER); skipping\n");
        } else {
            const char *env_password = getenv("SMTP_PASSWORD");
            if (env_password != NULL) {
                if (strlen(env_password) >= sizeof password) {
                    fprintf(stderr, "SMTP_PASSWORD too long\n");
                    goto quit;
                }
                strcpy(password, env_password);
            } else if (read_password("Password: ", password, sizeof password) != 0) {
                fprintf(stderr, "cannot read a password from /dev/tty; set SMTP_PASSWORD\n");
                goto quit;
            }
            rc = smtp_session_login(s, user, password, reply, sizeof reply);
            wipe(password, sizeof password);
            rc = report(s, "login", rc, reply);
            if (rc < 200 || rc >= 300)
                goto quit;
        }
    } else {
        printf("login: AUTH not offered; skipping\n");
    }

    /* The envelope comes from the From and To fields, as smtplib's
     * send_message takes it. */
    rc = smtp_session_send_message(s, m, NULL, NULL, 0, reply, sizeof reply);
    if (report(s, "send_message", rc, reply) < 0)
        goto quit;
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
        /* After some failures (a failed TLS handshake, a hang-up) the
         * library has already closed the connection: nothing to QUIT. */
    } else if (report(s, "quit", rc, reply) < 0) {
        status = 1;
    }
out:
    smtp_session_free(s);
    smtp_message_free(m);
    return status;
}
