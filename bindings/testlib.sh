# Sourced (not run) by bindings/<lang>/test.sh and bindings/test-all.sh:
# builds libsmtpc, installs it into a temporary prefix the way a user would
# (`make install PREFIX=...`), and starts the servers the binding tests use.
#
#   smtpc_build_lib      `make` (cargo build --release, then the symbol-
#                        versioned libsmtpc.so linked from libsmtpc.a; skipped
#                        when SMTPC_SKIP_BUILD=1 and it exists) and
#                        `make install PREFIX=<temp>/prefix`, unless
#                        SMTPC_PREFIX already names an installed prefix (as
#                        test-all.sh passes it on). Exports:
#                          SMTPC_PREFIX     the prefix
#                          PKG_CONFIG_PATH  $SMTPC_PREFIX/lib/pkgconfig first
#                          LD_LIBRARY_PATH  $SMTPC_PREFIX/lib first
#                          SMTPC_LIB        $SMTPC_PREFIX/lib/libsmtpc.so.0 (the
#                                           override every loader honours)
#                          SMTPC_HEADER     include/smtpc.h of the checkout (what
#                                           coverage.sh checks the bindings against)
#   smtpc_start_servers  certificates in a fresh temp dir, then
#                          aiosmtpd, STARTTLS: AUTH after TLS, VRFY knows
#                                    $SMTPC_TEST_KNOWN, RCPT refuses $SMTPC_TEST_REJECT
#                          aiosmtpd, implicit TLS: AUTH
#                          Postfix's smtp-sink: fast, discards (batches, big bodies)
#                          servers/slow_smtp.py: every reply after
#                                    $SMTPC_TEST_SLOW_DELAY_MS (gap measurements)
#                          servers/slow_smtp.py --mute: never answers (cancellation)
#                        ports chosen at runtime; an EXIT trap stops the
#                        servers and removes the temp dir.
#   smtpc_coverage LANG  runs coverage.sh for the binding (see there).
#
# The library is built in ${CARGO_TARGET_DIR:-target}/release, so a second
# checkout or a developer's own target dir works as CI's default does.
#
# Variables for the tests:
#   SMTPC_LIB SMTPC_PREFIX SMTPC_HEADER
#   SMTPC_TEST_HOST SMTPC_TEST_PORT SMTPC_TEST_TLS_PORT
#   SMTPC_TEST_CAPTURE SMTPC_TEST_TLS_CAPTURE SMTPC_TEST_CA SMTPC_TEST_OTHER_CA
#   SMTPC_TEST_USER SMTPC_TEST_PASS SMTPC_TEST_TOKEN (XOAUTH2) SMTPC_TEST_KNOWN SMTPC_TEST_REJECT
#   SMTPC_TEST_SINK_PORT SMTPC_TEST_SLOW_PORT SMTPC_TEST_SLOW_DELAY_MS
#   SMTPC_TEST_MUTE_PORT SMTPC_WORK (a scratch dir, removed at exit)

SMTPC_BINDINGS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SMTPC_BINDINGS_DIR/.." && pwd)"
SMTPC_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
SMTPC_SERVER_PIDS=()
SMTPC_WORK=""
SMTPC_OWN_WORK=0

smtpc_log() { echo "bindings: $*" >&2; }

smtpc_cleanup() {
    local pid
    for pid in "${SMTPC_SERVER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${SMTPC_SERVER_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    SMTPC_SERVER_PIDS=()
    if [ "$SMTPC_OWN_WORK" = 1 ] && [ -n "$SMTPC_WORK" ] && [ -d "$SMTPC_WORK" ]; then
        if [ "${SMTPC_KEEP_WORK:-0}" = 1 ]; then
            smtpc_log "kept $SMTPC_WORK"
        else
            rm -rf "$SMTPC_WORK"
        fi
    fi
}

# A scratch directory for this process, removed by the EXIT trap.
smtpc_work() {
    if [ -z "$SMTPC_WORK" ] || [ "$SMTPC_OWN_WORK" != 1 ]; then
        SMTPC_WORK="$(mktemp -d "${TMPDIR:-/tmp}/smtpc-bindings.XXXXXX")"
        SMTPC_OWN_WORK=1
        export SMTPC_WORK
        trap smtpc_cleanup EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
    fi
}

_smtpc_use_prefix() {
    export SMTPC_PREFIX="$1"
    export PKG_CONFIG_PATH="$SMTPC_PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
    export LD_LIBRARY_PATH="$SMTPC_PREFIX/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export SMTPC_LIB="$SMTPC_PREFIX/lib/libsmtpc.so.0"
    export SMTPC_HEADER="${SMTPC_HEADER:-$REPO/include/smtpc.h}"
}

smtpc_build_lib() {
    if [ -n "${SMTPC_PREFIX:-}" ] && [ -e "$SMTPC_PREFIX/lib/libsmtpc.so.0" ] \
        && [ -f "$SMTPC_PREFIX/lib/pkgconfig/smtpc.pc" ]; then
        case ":${PKG_CONFIG_PATH:-}:" in
        *":$SMTPC_PREFIX/lib/pkgconfig:"*) export SMTPC_LIB="$SMTPC_PREFIX/lib/libsmtpc.so.0"
            export SMTPC_HEADER="${SMTPC_HEADER:-$REPO/include/smtpc.h}" ;;
        *) _smtpc_use_prefix "$SMTPC_PREFIX" ;;
        esac
        return 0
    fi
    command -v make >/dev/null 2>&1 || { smtpc_log "ERROR: make not found"; return 1; }
    smtpc_work
    local dist="$SMTPC_TARGET_DIR/release/dist/libsmtpc.so"
    if [ "${SMTPC_SKIP_BUILD:-0}" != 1 ] || [ ! -e "$dist" ]; then
        command -v cargo >/dev/null 2>&1 || { smtpc_log "ERROR: cargo not found"; return 1; }
        smtpc_log "make (cargo build --release; libsmtpc.so with symbol versions) in $SMTPC_TARGET_DIR"
        if ! make -s -C "$REPO" CARGO_TARGET_DIR="$SMTPC_TARGET_DIR" all >"$SMTPC_WORK/make.log" 2>&1; then
            tail -n 40 "$SMTPC_WORK/make.log" >&2
            smtpc_log "ERROR: make failed"
            return 1
        fi
    fi
    local prefix="$SMTPC_WORK/prefix"
    if ! make -s -C "$REPO" CARGO_TARGET_DIR="$SMTPC_TARGET_DIR" install PREFIX="$prefix" \
        >"$SMTPC_WORK/install.log" 2>&1; then
        tail -n 40 "$SMTPC_WORK/install.log" >&2
        smtpc_log "ERROR: make install failed"
        return 1
    fi
    _smtpc_use_prefix "$prefix"
    smtpc_log "installed into $prefix (make install; PKG_CONFIG_PATH, LD_LIBRARY_PATH, SMTPC_LIB point there)"
}

smtpc_coverage() {
    bash "$SMTPC_BINDINGS_DIR/coverage.sh" "$1"
}

_smtpc_wait_port_file() { # NAME PID: waits for $SMTPC_WORK/NAME.port
    local name="$1" pid="$2" i
    for i in $(seq 1 300); do
        if [ -s "$SMTPC_WORK/$name.port" ]; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            smtpc_log "ERROR: $name exited before listening:"
            cat "$SMTPC_WORK/$name.log" >&2
            return 1
        fi
        sleep 0.1
    done
    smtpc_log "ERROR: $name did not listen within 30 s"
    return 1
}

# _smtpc_server NAME [server args...]: starts one aiosmtpd server.
_smtpc_server() {
    local name="$1"
    shift
    "$REPO/.venv/bin/python" "$REPO/tests/servers/aiosmtpd_server.py" \
        --host 127.0.0.1 --port 0 --port-file "$SMTPC_WORK/$name.port" \
        --capture-dir "$SMTPC_WORK/$name" "$@" >"$SMTPC_WORK/$name.log" 2>&1 &
    SMTPC_SERVER_PIDS+=("$!")
    _smtpc_wait_port_file "$name" "$!"
}

_smtpc_slow() { # NAME [slow_smtp.py args...]
    local name="$1"
    shift
    "$REPO/.venv/bin/python" "$SMTPC_BINDINGS_DIR/servers/slow_smtp.py" \
        --port-file "$SMTPC_WORK/$name.port" "$@" >"$SMTPC_WORK/$name.log" 2>&1 &
    SMTPC_SERVER_PIDS+=("$!")
    _smtpc_wait_port_file "$name" "$!"
}

# smtp-sink takes a port number, not 0: probe a free one, retry on a race.
_smtpc_sink() {
    local sink attempt port pid i
    sink="$(command -v smtp-sink || echo /usr/sbin/smtp-sink)"
    [ -x "$sink" ] || { smtpc_log "ERROR: smtp-sink not found (Debian: postfix)"; return 1; }
    for attempt in 1 2 3 4 5; do
        port="$("$REPO/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
        (cd "$SMTPC_WORK" && exec "$sink" -u nobody -m 64 "127.0.0.1:$port" 256) >"$SMTPC_WORK/sink.log" 2>&1 &
        pid=$!
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                SMTPC_SERVER_PIDS+=("$pid")
                export SMTPC_TEST_SINK_PORT="$port"
                return 0
            fi
            sleep 0.05
        done
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    smtpc_log "ERROR: smtp-sink did not start:"
    cat "$SMTPC_WORK/sink.log" >&2
    return 1
}

smtpc_start_servers() {
    local have_sink=0
    { command -v smtp-sink || [ -x /usr/sbin/smtp-sink ]; } >/dev/null 2>&1 && have_sink=1
    if [ "$have_sink" = 0 ] || ! "$REPO/.venv/bin/python" -c "import aiosmtpd" 2>/dev/null; then
        smtpc_log "no .venv with aiosmtpd or no smtp-sink: running scripts/install-deps.sh"
        bash "$REPO/scripts/install-deps.sh" || return 1
    fi
    smtpc_work
    bash "$REPO/tests/servers/certs.sh" "$SMTPC_WORK/certs" >/dev/null || return 1

    export SMTPC_TEST_HOST=localhost
    export SMTPC_TEST_USER=binding-user
    export SMTPC_TEST_PASS='Tr4ce-Me-N0t!'
    export SMTPC_TEST_TOKEN='ya29.binding-test-token'
    export SMTPC_TEST_KNOWN=known@example.com
    export SMTPC_TEST_REJECT=unknown@example.com
    export SMTPC_TEST_CA="$SMTPC_WORK/certs/ca.pem"
    export SMTPC_TEST_OTHER_CA="$SMTPC_WORK/certs/other-ca.pem"
    export SMTPC_TEST_CAPTURE="$SMTPC_WORK/starttls"
    export SMTPC_TEST_TLS_CAPTURE="$SMTPC_WORK/implicit"
    export SMTPC_TEST_SLOW_DELAY_MS="${SMTPC_TEST_SLOW_DELAY_MS:-250}"
    local cert=(--tls-cert "$SMTPC_WORK/certs/server.pem" --tls-key "$SMTPC_WORK/certs/server.key")

    _smtpc_server starttls "${cert[@]}" --auth-user "$SMTPC_TEST_USER:$SMTPC_TEST_PASS" \
        --xoauth2-token "$SMTPC_TEST_USER:$SMTPC_TEST_TOKEN" \
        --known-user "$SMTPC_TEST_KNOWN" --reject-rcpt "$SMTPC_TEST_REJECT" || return 1
    _smtpc_server implicit "${cert[@]}" --implicit-tls \
        --auth-user "$SMTPC_TEST_USER:$SMTPC_TEST_PASS" || return 1
    _smtpc_slow slow --delay-ms "$SMTPC_TEST_SLOW_DELAY_MS" || return 1
    _smtpc_slow mute --mute || return 1
    _smtpc_sink || return 1
    SMTPC_TEST_PORT="$(cat "$SMTPC_WORK/starttls.port")"
    SMTPC_TEST_TLS_PORT="$(cat "$SMTPC_WORK/implicit.port")"
    SMTPC_TEST_SLOW_PORT="$(cat "$SMTPC_WORK/slow.port")"
    SMTPC_TEST_MUTE_PORT="$(cat "$SMTPC_WORK/mute.port")"
    export SMTPC_TEST_PORT SMTPC_TEST_TLS_PORT SMTPC_TEST_SLOW_PORT SMTPC_TEST_MUTE_PORT
    smtpc_log "aiosmtpd: STARTTLS $SMTPC_TEST_PORT, implicit TLS $SMTPC_TEST_TLS_PORT;" \
        "smtp-sink $SMTPC_TEST_SINK_PORT; slow ($SMTPC_TEST_SLOW_DELAY_MS ms) $SMTPC_TEST_SLOW_PORT;" \
        "mute $SMTPC_TEST_MUTE_PORT"
}
