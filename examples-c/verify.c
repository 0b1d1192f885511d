/*
 * verify.c - ask the server about addresses with VRFY.
 *
 * The C version of smtplib's verify example:
 *
 *     server = smtplib.SMTP(host, port)
 *     server.set_debuglevel(True)
 *     try:
 *         result = server.verify(addr)
 *     finally:
 *         server.quit()
 *     print(addr + ':', result)
 *
 * Usage: verify host port addr1 [addr2 ...]
 * Prints one line per address in smtplib's tuple style:
 *     addr1: (252, 'Cannot VRFY user, but will accept message')
 * The transcript (debug level 1) goes to stderr. Any reply code counts as a
 * result (servers often refuse VRFY); the exit status is non-zero only when
 * the session itself fails.
 */
#include <smtpc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLY_CAP 512

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

/* Prints text as a Python string literal in single quotes, escaping what
 * repr() would, so multi-line replies stay on one line. */
static void print_repr(const char *text)
{
    const unsigned char *p;
    putchar('\'');
    for (p = (const unsigned char *)text; *p != '\0'; p++) {
        switch (*p) {
        case '\'': fputs("\\'", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                printf("\\x%02x", *p);
            else
                putchar(*p); /* printable ASCII and UTF-8 pass through */
        }
    }
    putchar('\'');
}

int main(int argc, char **argv)
{
    char reply[REPLY_CAP];
    smtp_session *s = NULL;
    uint16_t port;
    int rc, i, status = 1;

    if (argc < 4) {
        fprintf(stderr, "usage: %s host port addr1 [addr2 ...]\n", argv[0]);
        return 2;
    }
    port = parse_port(argv[2]);
    if (port == 0) {
        fprintf(stderr, "%s: bad port '%s'\n", argv[0], argv[2]);
        return 2;
    }

    s = smtp_session_new();
    if (s == NULL) {
        fprintf(stderr, "smtp_session_new failed\n");
        return 1;
    }
    rc = smtp_session_set_debuglevel(s, 1);
    if (rc != SMTPC_OK) {
        print_error(s, "set_debuglevel", rc);
        goto out;
    }

    rc = smtp_session_connect(s, argv[1], port, reply, sizeof reply);
    if (rc < 0) {
        print_error(s, "connect", rc);
        goto out;
    }
    if (rc != 220) {
        fprintf(stderr, "connect: unexpected greeting %d %s\n", rc, reply);
        goto quit;
    }
    rc = smtp_session_ehlo(s, NULL, reply, sizeof reply);
    if (rc < 0) {
        print_error(s, "ehlo", rc);
        goto quit;
    }
    if (rc != 250) {
        fprintf(stderr, "ehlo: %d %s\n", rc, reply);
        goto quit;
    }

    for (i = 3; i < argc; i++) {
        size_t len;
        char *text;

        rc = smtp_session_vrfy(s, argv[i], reply, sizeof reply);
        if (rc < 0) {
            print_error(s, "vrfy", rc);
            goto quit;
        }
        /* A reply that did not fit in the buffer is fetched in full. */
        len = smtp_session_last_reply(s, NULL, 0);
        text = len < sizeof reply ? reply : (char *)malloc(len + 1);
        if (text == NULL) {
            fprintf(stderr, "out of memory\n");
            goto quit;
        }
        if (text != reply)
            smtp_session_last_reply(s, text, len + 1);
        printf("%s: (%d, ", argv[i], rc);
        print_repr(text);
        printf(")\n");
        if (text != reply)
            free(text);
    }
    status = 0;

quit:
    rc = smtp_session_quit(s, reply, sizeof reply);
    if (rc == SMTPC_E_STATE && status != 0) {
        /* After some failures (e.g. the server hung up) the library has
         * already closed the connection: nothing left to QUIT. */
    } else if (rc < 0) {
        print_error(s, "quit", rc);
        status = 1;
    }
out:
    smtp_session_free(s);
    return status;
}
