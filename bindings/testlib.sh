# Sourced (not run) by bindings/<lang>/test.sh: builds libsmtpc if needed and
# starts two private aiosmtpd servers for the binding tests.
#
#   smtpc_build_lib      cargo build --release (skipped when SMTPC_SKIP_BUILD=1),
#                        makes target/release/libsmtpc.so.0 -> libsmtpc.so,
#                        exports SMTPC_LIB (absolute path of libsmtpc.so)
#   smtpc_start_servers  certificates in a fresh temp dir, then
#                          STARTTLS server: AUTH after TLS, VRFY knows
#                                           $SMTPC_TEST_KNOWN, RCPT refuses
#                                           $SMTPC_TEST_REJECT
#                          implicit TLS server: AUTH
#                        ports chosen at runtime; exports the SMTPC_TEST_*
#                        variables below; an EXIT trap stops the servers
#                        and removes the temp dir.
#
# Variables for the tests:
#   SMTPC_LIB SMTPC_TEST_HOST SMTPC_TEST_PORT SMTPC_TEST_TLS_PORT
#   SMTPC_TEST_CAPTURE SMTPC_TEST_TLS_CAPTURE SMTPC_TEST_CA SMTPC_TEST_OTHER_CA
#   SMTPC_TEST_USER SMTPC_TEST_PASS SMTPC_TEST_KNOWN SMTPC_TEST_REJECT

SMTPC_BINDINGS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SMTPC_BINDINGS_DIR/.." && pwd)"
SMTPC_SERVER_PIDS=()
SMTPC_WORK=""

smtpc_log() { echo "bindings: $*" >&2; }

smtpc_build_lib() {
    if [ "${SMTPC_SKIP_BUILD:-0}" != 1 ] || [ ! -f "$REPO/target/release/libsmtpc.so" ]; then
        command -v cargo >/dev/null 2>&1 || { smtpc_log "ERROR: cargo not found"; return 1; }
        smtpc_log "cargo build --release"
        (cd "$REPO" && cargo build --release --quiet) || return 1
    fi
    [ -f "$REPO/target/release/libsmtpc.so" ] || { smtpc_log "ERROR: no target/release/libsmtpc.so"; return 1; }
    [ -e "$REPO/target/release/libsmtpc.so.0" ] || ln -sf libsmtpc.so "$REPO/target/release/libsmtpc.so.0"
    export SMTPC_LIB="$REPO/target/release/libsmtpc.so"
}

smtpc_cleanup() {
    local pid
    for pid in "${SMTPC_SERVER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${SMTPC_SERVER_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    SMTPC_SERVER_PIDS=()
    if [ -n "$SMTPC_WORK" ] && [ -d "$SMTPC_WORK" ]; then
        if [ "${SMTPC_KEEP_WORK:-0}" = 1 ]; then
            smtpc_log "kept $SMTPC_WORK"
        else
            rm -rf "$SMTPC_WORK"
        fi
    fi
}

# _smtpc_server NAME [server args...]: starts one server, prints its port.
_smtpc_server() {
    local name="$1" i pid
    shift
    "$REPO/.venv/bin/python" "$REPO/tests/servers/aiosmtpd_server.py" \
        --host 127.0.0.1 --port 0 --port-file "$SMTPC_WORK/$name.port" \
        --capture-dir "$SMTPC_WORK/$name" "$@" >"$SMTPC_WORK/$name.log" 2>&1 &
    pid=$!
    SMTPC_SERVER_PIDS+=("$pid")
    for i in $(seq 1 300); do
        if [ -s "$SMTPC_WORK/$name.port" ]; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            smtpc_log "ERROR: aiosmtpd ($name) exited before listening:"
            cat "$SMTPC_WORK/$name.log" >&2
            return 1
        fi
        sleep 0.1
    done
    smtpc_log "ERROR: aiosmtpd ($name) did not listen within 30 s"
    return 1
}

smtpc_start_servers() {
    if ! "$REPO/.venv/bin/python" -c "import aiosmtpd" 2>/dev/null; then
        smtpc_log "no .venv with aiosmtpd: running scripts/install-deps.sh"
        bash "$REPO/scripts/install-deps.sh" || return 1
    fi
    SMTPC_WORK="$(mktemp -d "${TMPDIR:-/tmp}/smtpc-bindings.XXXXXX")"
    trap smtpc_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    bash "$REPO/tests/servers/certs.sh" "$SMTPC_WORK/certs" >/dev/null || return 1

    export SMTPC_TEST_HOST=localhost
    export SMTPC_TEST_USER=binding-user
    export SMTPC_TEST_PASS='Tr4ce-Me-N0t!'
    export SMTPC_TEST_KNOWN=known@example.com
    export SMTPC_TEST_REJECT=unknown@example.com
    export SMTPC_TEST_CA="$SMTPC_WORK/certs/ca.pem"
    export SMTPC_TEST_OTHER_CA="$SMTPC_WORK/certs/other-ca.pem"
    export SMTPC_TEST_CAPTURE="$SMTPC_WORK/starttls"
    export SMTPC_TEST_TLS_CAPTURE="$SMTPC_WORK/implicit"
    local cert=(--tls-cert "$SMTPC_WORK/certs/server.pem" --tls-key "$SMTPC_WORK/certs/server.key")

    _smtpc_server starttls "${cert[@]}" --auth-user "$SMTPC_TEST_USER:$SMTPC_TEST_PASS" \
        --known-user "$SMTPC_TEST_KNOWN" --reject-rcpt "$SMTPC_TEST_REJECT" || return 1
    _smtpc_server implicit "${cert[@]}" --implicit-tls \
        --auth-user "$SMTPC_TEST_USER:$SMTPC_TEST_PASS" || return 1
    SMTPC_TEST_PORT="$(cat "$SMTPC_WORK/starttls.port")"
    SMTPC_TEST_TLS_PORT="$(cat "$SMTPC_WORK/implicit.port")"
    export SMTPC_TEST_PORT SMTPC_TEST_TLS_PORT
    smtpc_log "aiosmtpd: STARTTLS on $SMTPC_TEST_PORT, implicit TLS on $SMTPC_TEST_TLS_PORT"
}
