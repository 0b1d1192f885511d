#!/usr/bin/env bash
# bench/tls_handshake.sh — what one STARTTLS costs the client, in one run
# against one private Postfix on loopback (tests/servers/postfix.sh, the
# STARTTLS-optional listener; TLS 1.3, ECDSA P-256 certificate made by
# tests/servers/certs.sh), every client trusting the same CA file:
#
#   libsmtpc before   a git revision (BEFORE, default fd6d65c~1: the
#                     connector built per STARTTLS) built aside
#   libsmtpc after    the working tree; one session reconnecting, and a
#                     fresh session per connection
#   smtplib           Python's, with one SSLContext made from the CA file
#   openssl (crate)   bench/tls_handshake/openssl-probe: one SslConnector,
#                     full handshakes, and with TLS session resumption
#                     (what native-tls has no API for)
#
#   bench/tls_handshake.sh [N [ROUNDS]]    N connections per run (200),
#                                          ROUNDS interleaved rounds (3)
#   BEFORE=<rev>       the revision to compare with (default fd6d65c~1)
#   CLIENTS="after smtplib ..."  a subset of: before after after-fresh
#                      smtplib openssl-full openssl-resume
#
# Each client runs N connections of connect+EHLO+QUIT ("plain") and N of
# connect+EHLO+STARTTLS+EHLO+QUIT, one warm-up connection first; the cost
# of a handshake is the difference, per connection, of the process's
# user+sys CPU (getrusage) and of wall time. Medians over the rounds.
# Needs root (Postfix), gcc, cargo, python3, openssl. Report on stdout
# (Markdown), progress on stderr.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERE="$REPO/bench/tls_handshake"
N="${1:-200}"
ROUNDS="${2:-3}"
# The last revision that built the TLS connector on every STARTTLS.
BEFORE="${BEFORE:-fd6d65c~1}"
WORK="$REPO/target/tls-handshake-bench"
log() { echo "tls_handshake: $*" >&2; }

[ "$(id -u)" -eq 0 ] || { log "needs root (the Postfix master)"; exit 1; }
mkdir -p "$WORK"
TMP="$(mktemp -d /tmp/smtpc-tls-bench.XXXXXX)"
PF="$TMP/pf"
cleanup() {
    bash "$REPO/tests/servers/postfix.sh" stop "$PF" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# ---- builds ------------------------------------------------------------------
AFTER_TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
log "building libsmtpc (working tree, release)"
(cd "$REPO" && CARGO_TARGET_DIR="$AFTER_TARGET" cargo build --release --quiet --lib)
AFTER_LIB="$AFTER_TARGET/release"

rev="$(git -C "$REPO" rev-parse --short "$BEFORE")"
BEFORE_SRC="$WORK/before-$rev"
BEFORE_LIB="$BEFORE_SRC/target/release"
if [ ! -f "$BEFORE_LIB/libsmtpc.so" ] && [[ " ${CLIENTS:-before} " == *" before "* ]]; then
    log "building libsmtpc $BEFORE ($rev, release) in $BEFORE_SRC"
    rm -rf "$BEFORE_SRC"
    mkdir -p "$BEFORE_SRC"
    git -C "$REPO" archive "$rev" | tar -x -C "$BEFORE_SRC"
    (cd "$BEFORE_SRC" && CARGO_TARGET_DIR="$BEFORE_SRC/target" cargo build --release --quiet --lib)
fi

log "building the C driver and the openssl probe"
gcc -std=c99 -O2 -Wall -Wextra -Werror -I"$REPO/include" "$HERE/tls_handshake.c" \
    -L"$AFTER_LIB" -lsmtpc -o "$WORK/tls_handshake"
CARGO_TARGET_DIR="$WORK/probe-target" cargo build --release --quiet \
    --manifest-path "$HERE/openssl-probe/Cargo.toml"
PROBE="$WORK/probe-target/release/tls-openssl-probe"

# ---- server ------------------------------------------------------------------
bash "$REPO/tests/servers/certs.sh" "$TMP/certs" >&2
CA="$TMP/certs/ca.pem"
bash "$REPO/tests/servers/postfix.sh" start "$PF" "$TMP/certs/server.pem" "$TMP/certs/server.key" >&2
PORT="$(sed -n 's/^PORT_SUBMIT=//p' "$PF/ports.env")"
log "Postfix $(postconf -h mail_version 2>/dev/null || echo '?') STARTTLS on 127.0.0.1:$PORT"

# ---- runs --------------------------------------------------------------------
# client name -> a command taking MODE (plain|starttls) last-but-one... each
# prints "n= cpu_s= wall_s= [reused=]".
run() { # client mode
    local c="$1" m="$2"
    case "$c" in
    before) LD_LIBRARY_PATH="$BEFORE_LIB" "$WORK/tls_handshake" "$m" localhost "$PORT" "$CA" "$N" ;;
    after) LD_LIBRARY_PATH="$AFTER_LIB" "$WORK/tls_handshake" "$m" localhost "$PORT" "$CA" "$N" ;;
    after-fresh) LD_LIBRARY_PATH="$AFTER_LIB" "$WORK/tls_handshake" "$m" localhost "$PORT" "$CA" "$N" fresh ;;
    smtplib) python3 "$HERE/smtplib_handshake.py" "$m" localhost "$PORT" "$CA" "$N" ;;
    openssl-full | openssl-resume)
        local pm="${c#openssl-}"
        [ "$m" = plain ] && pm=plain
        "$PROBE" handshake localhost "$PORT" "$CA" "$N" "$pm" ;;
    esac
}
read -r -a CLIENTS <<<"${CLIENTS:-before after after-fresh smtplib openssl-full openssl-resume}"
declare -A RES
for ((r = 1; r <= ROUNDS; r++)); do
    for c in "${CLIENTS[@]}"; do
        for m in plain starttls; do
            out="$(run "$c" "$m")"
            RES["$c,$m,$r"]="$out"
            log "round $r $c $m: $out"
        done
    done
done

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
# per-connection milliseconds of FIELD for client C in MODE, median over rounds
ms() { # c mode field
    local r
    for ((r = 1; r <= ROUNDS; r++)); do
        awk -v x="$(field "$3" "${RES[$1,$2,$r]}")" -v n="$N" 'BEGIN {printf "%.6f\n", x * 1000 / n}'
    done | median
}
# the handshake: starttls minus plain, per round, median
hs() { # c field
    local r
    for ((r = 1; r <= ROUNDS; r++)); do
        awk -v a="$(field "$2" "${RES[$1,starttls,$r]}")" -v b="$(field "$2" "${RES[$1,plain,$r]}")" \
            -v n="$N" 'BEGIN {printf "%.6f\n", (a - b) * 1000 / n}'
    done | median
}

label() {
    case "$1" in
    before) echo "libsmtpc $BEFORE ($rev): connector built per STARTTLS" ;;
    after) echo "libsmtpc working tree: one session, connector cached" ;;
    after-fresh) echo "libsmtpc working tree: a new session per connection" ;;
    smtplib) echo "Python $(python3 -c 'import sys; print(sys.version.split()[0])') smtplib, one SSLContext" ;;
    openssl-full) echo "openssl crate, one SslConnector, full handshakes" ;;
    openssl-resume) echo "openssl crate, one SslConnector + session resumption" ;;
    esac
}

SMTPLIB_HS=0
[ -z "${RES[smtplib,plain,1]:-}" ] || SMTPLIB_HS="$(hs smtplib cpu_s)"
echo "## STARTTLS handshake cost, client side ($N connections x $ROUNDS rounds, medians)"
echo
echo "Postfix on 127.0.0.1, TLS 1.3, CA file given to every client; $(openssl version)."
echo "Handshake = (connect+EHLO+STARTTLS+EHLO+QUIT) - (connect+EHLO+QUIT), per connection."
echo
echo "| client | handshake CPU ms | vs smtplib | handshake wall ms | CPU ms per TLS connection | wall ms per TLS connection |"
echo "|---|---:|---:|---:|---:|---:|"
for c in "${CLIENTS[@]}"; do
    h="$(hs "$c" cpu_s)"
    printf '| %s | %.3f | %.2fx | %.3f | %.3f | %.3f |\n' "$(label "$c")" "$h" \
        "$(awk -v a="$h" -v b="$SMTPLIB_HS" 'BEGIN {print (b > 0) ? a / b : 0}')" "$(hs "$c" wall_s)" \
        "$(ms "$c" starttls cpu_s)" "$(ms "$c" starttls wall_s)"
done
if [ -n "${RES[openssl-resume,starttls,$ROUNDS]:-}" ]; then
    reused="$(field reused "${RES[openssl-resume,starttls,$ROUNDS]}")"
    echo
    echo "Session resumption: $reused of $N handshakes resumed in the last round."
fi
echo
echo "Building one connector that trusts only the CA file (CPU per build, $(nproc) CPUs):"
echo
"$PROBE" build "$CA" 50 | sed 's/^/    /'
