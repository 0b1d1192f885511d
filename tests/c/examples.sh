#!/usr/bin/env bash
# examples.sh - runs the C examples (examples-c/) against a local aiosmtpd
# and checks their output and the messages the server captured.
#
#   RUNNER="valgrind ..." tests/c/examples.sh   runs every example under RUNNER
#   EXAMPLES_DIR=...                            where the built examples are
#                                               (default: examples-c/)
# Needs the examples built and scripts/install-deps.sh run (tests/c/run.sh
# does both). Prints "examples: N passed, M failed"; exit 1 on any failure.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
EXAMPLES_DIR="${EXAMPLES_DIR:-$REPO/examples-c}"
read -r -a RUNNER_ARGS <<<"${RUNNER:-}"
. "$REPO/tests/c/aiosmtpd.sh"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/smtpc-examples.XXXXXX")"
trap 'stop_aiosmtpd; [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"' EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   - $*"; }
not_ok() { failed=$((failed + 1)); echo "FAIL - $*"; }

# ex NAME [VAR=VALUE...] PROGRAM ARGS... : runs one example (under RUNNER)
# with those environment variables, leaving its stdout, stderr and exit
# status in $OUT, $ERR and $RC. The variables are set outside RUNNER so that
# valgrind runs the example itself, not env(1).
ex() {
    local name="$1" vars=()
    shift
    while [ $# -gt 0 ] && [[ "$1" == [A-Z_]*=* ]]; do
        vars+=("$1")
        shift
    done
    RC=0
    env "${vars[@]+"${vars[@]}"}" "${RUNNER_ARGS[@]+"${RUNNER_ARGS[@]}"}" "$@" \
        >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null || RC=$?
    OUT="$WORK/$name.out"
    ERR="$WORK/$name.err"
}
show() { # on failure, show what the example printed
    sed 's/^/    | /' "$OUT" "$ERR"
}
expect_rc() { # want description
    if [ "$RC" -eq "$1" ]; then ok "$2 (exit $RC)"; else not_ok "$2: exit $RC, wanted $1"; show; fi
}
expect_out() { # file ERE description [grep option, e.g. -i]
    if grep -Eq ${4:-} -- "$2" "$1"; then ok "$3"; else not_ok "$3: no line matching /$2/ in $(basename "$1")"; show; fi
}
n_captured() { find "$CAPTURE_DIR" -name '*.eml' | wc -l; }
last_eml() { find "$CAPTURE_DIR" -name '*.eml' | sort | tail -n 1; }

start_aiosmtpd "$WORK" --known-user recipient@example.org || { echo "examples: 0 passed, 1 failed"; exit 1; }
P="$SMTP_PORT"

# --- sendmail: plain session, transcript on stderr -------------------------
before=$(n_captured)
ex sendmail "$EXAMPLES_DIR/sendmail" 127.0.0.1 "$P"
expect_rc 0 "sendmail succeeds"
expect_out "$OUT" '^send_message: 250 ' "sendmail prints the final 250"
expect_out "$OUT" '^  recipient@example\.org: 250 ' "sendmail prints the recipient's code"
expect_out "$OUT" '^quit: 221' "sendmail quits"
# (SMTP verbs are case-insensitive; the library writes them as smtplib does.)
expect_out "$ERR" 'MAIL FROM:<sender@example\.org>' "debug level 1 shows MAIL FROM on stderr" -i
expect_out "$ERR" 'RCPT TO:<recipient@example\.org>' "debug level 1 shows RCPT TO on stderr" -i
if [ "$(n_captured)" -eq $((before + 1)) ]; then
    ok "sendmail: server captured one message"
    eml="$(last_eml)"
    expect_out "$eml" '^Subject: libsmtpc sendmail example' "captured message has the Subject"
    expect_out "$eml" '^smtp_session_send_message\(\)\.' "captured message has the body"
    # Built with the builder: display names, generated Date and Message-ID.
    expect_out "$eml" '^From: "libsmtpc example" <sender@example\.org>' "From with a display name"
    expect_out "$eml" '^To: "Recipient" <recipient@example\.org>' "To with a display name"
    expect_out "$eml" '^Date: ' "a Date is generated"
    expect_out "$eml" '^Message-ID: <[^@>]+@example\.org>' "a Message-ID is generated"
    expect_out "$eml" '^MIME-Version: 1\.0' "MIME-Version"
    expect_out "$eml" '^Content-Type: text/plain; charset="?utf-8"?' "a text/plain body"
    expect_out "${eml%.eml}.json" '"mail_from": "sender@example\.org"' "envelope sender"
    expect_out "${eml%.eml}.json" '"rcpt_tos": \["recipient@example\.org"\]' "envelope recipient"
else
    not_ok "sendmail: server captured $(( $(n_captured) - before )) messages, wanted 1"
fi

# SMTP_HOST/SMTP_PORT are used when there are no arguments.
ex sendmail-env SMTP_HOST=127.0.0.1 SMTP_PORT="$P" "$EXAMPLES_DIR/sendmail"
expect_rc 0 "sendmail takes host and port from SMTP_HOST/SMTP_PORT"

# --- authenticated: EHLO, STARTTLS, EHLO, AUTH, send -----------------------
before=$(n_captured)
ex authenticated SMTP_CA_FILE="$CERT_DIR/ca.pem" SMTP_PASSWORD=demo-password \
    "$EXAMPLES_DIR/authenticated" localhost "$P" demo
expect_rc 0 "authenticated succeeds"
expect_out "$OUT" '^connect: 220 ' "authenticated: greeting"
expect_out "$OUT" '^starttls: 220 ' "authenticated: STARTTLS"
expect_out "$OUT" '^login: 235 ' "authenticated: AUTH accepted"
expect_out "$OUT" '^send_message: 250 ' "authenticated: message accepted"
expect_out "$OUT" '^quit: 221' "authenticated: QUIT"
if [ "$(grep -c '^ehlo: 250' "$OUT")" -eq 2 ]; then ok "authenticated: EHLO before and after STARTTLS"; else not_ok "authenticated: wanted two 'ehlo: 250' lines"; show; fi
# aiosmtpd offers AUTH only under TLS, so seeing it (as an indented line of
# a multi-line reply) shows the second EHLO reply was printed in full.
if grep -q '^    AUTH .*PLAIN' "$OUT"; then ok "authenticated: full EHLO reply printed"; else not_ok "authenticated: EHLO reply lacks AUTH"; show; fi
if [ "$(n_captured)" -eq $((before + 1)) ]; then
    ok "authenticated: server captured one message"
    eml="$(last_eml)"
    expect_out "$eml" '^Subject: libsmtpc authenticated example' "captured message has the Subject"
    expect_out "$eml" '^Content-Type: multipart/mixed' "text and attachment: multipart/mixed"
    expect_out "$eml" '^Content-Disposition: attachment; filename="?notes\.txt"?' "the attachment is there"
    expect_out "$eml" '^Attached with smtp_message_attach\(\)\.' "the attachment's content arrived"
    expect_out "${eml%.eml}.json" '"rcpt_tos": \["recipient@example\.org"\]' "envelope from the To field"
else
    not_ok "authenticated: server captured $(( $(n_captured) - before )) messages, wanted 1"
fi

before=$(n_captured)
ex auth-badpw SMTP_CA_FILE="$CERT_DIR/ca.pem" SMTP_PASSWORD=wrong \
    "$EXAMPLES_DIR/authenticated" localhost "$P" demo
expect_rc 1 "authenticated with a wrong password fails"
expect_out "$OUT" '^login: 535 ' "wrong password: 535 shown"
[ "$(n_captured)" -eq "$before" ] && ok "wrong password: nothing sent" || not_ok "wrong password: a message was sent"

ex auth-badca SMTP_CA_FILE="$CERT_DIR/other-ca.pem" SMTP_PASSWORD=demo-password \
    "$EXAMPLES_DIR/authenticated" localhost "$P" demo
expect_rc 1 "authenticated trusting the wrong CA fails"
expect_out "$ERR" '^starttls failed: .*\(-10\)' "wrong CA: SMTPC_E_TLS_VERIFY reported"
[ "$(n_captured)" -eq "$before" ] && ok "wrong CA: nothing sent" || not_ok "wrong CA: a message was sent"

# --- verify: smtplib's tuple style -----------------------------------------
ex verify "$EXAMPLES_DIR/verify" 127.0.0.1 "$P" recipient@example.org nobody@example.org
expect_rc 0 "verify succeeds"
cat >"$WORK/verify.want" <<'WANT'
recipient@example.org: (250, '2.1.5 <recipient@example.org>')
nobody@example.org: (550, '5.1.1 <nobody@example.org>: Recipient address rejected: User unknown')
WANT
if diff -u "$WORK/verify.want" "$OUT" >"$WORK/verify.diff"; then
    ok "verify prints (code, 'text') per address"
else
    not_ok "verify output differs:"; sed 's/^/    | /' "$WORK/verify.diff"
fi
expect_out "$ERR" 'VRFY nobody@example\.org' "verify: transcript on stderr" -i

ex verify-usage "$EXAMPLES_DIR/verify" 127.0.0.1 "$P"
expect_rc 2 "verify without addresses prints usage"

# --- failures are reported, not crashed on ---------------------------------
stop_aiosmtpd # its port is now closed
ex sendmail-refused "$EXAMPLES_DIR/sendmail" 127.0.0.1 "$P"
expect_rc 1 "sendmail to a closed port fails"
expect_out "$ERR" '^connect failed: .*\(-5\)' "closed port: SMTPC_E_CONNECT reported"

echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
