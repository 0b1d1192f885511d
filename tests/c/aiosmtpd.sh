# Sourced (not run) by scripts/demo.sh and tests/c/examples.sh.
# Starts the harness's aiosmtpd server on 127.0.0.1 with STARTTLS (a fresh
# throwaway CA) and AUTH for demo:demo-password, and stops it again.
#
#   start_aiosmtpd WORKDIR [extra server args...]
#       sets SMTP_PORT, CERT_DIR (ca.pem, server.pem, ...), CAPTURE_DIR
#       (NNNN.eml / NNNN.json per accepted message), AIOSMTPD_LOG, AIOSMTPD_PID
#   stop_aiosmtpd
#
# Needs REPO (the repository root) and scripts/install-deps.sh to have run.

start_aiosmtpd() {
    local work="$1" i
    shift
    CERT_DIR="$work/certs"
    CAPTURE_DIR="$work/capture"
    AIOSMTPD_LOG="$work/aiosmtpd.log"
    rm -f "$work/port"
    mkdir -p "$CAPTURE_DIR"
    bash "$REPO/tests/servers/certs.sh" "$CERT_DIR" >/dev/null || return 1
    "$REPO/.venv/bin/python" "$REPO/tests/servers/aiosmtpd_server.py" \
        --host 127.0.0.1 --port 0 --port-file "$work/port" \
        --capture-dir "$CAPTURE_DIR" \
        --tls-cert "$CERT_DIR/server.pem" --tls-key "$CERT_DIR/server.key" \
        --auth-user demo:demo-password --auth-require-tls \
        "$@" >"$AIOSMTPD_LOG" 2>&1 &
    AIOSMTPD_PID=$!
    # The server writes the port file (atomically) once it accepts connections.
    for i in $(seq 1 300); do
        if [ -s "$work/port" ]; then
            SMTP_PORT="$(cat "$work/port")"
            return 0
        fi
        if ! kill -0 "$AIOSMTPD_PID" 2>/dev/null; then
            echo "aiosmtpd exited before listening; its log:" >&2
            cat "$AIOSMTPD_LOG" >&2
            AIOSMTPD_PID=
            return 1
        fi
        sleep 0.1
    done
    echo "aiosmtpd did not write its port file within 30 s" >&2
    stop_aiosmtpd
    return 1
}

stop_aiosmtpd() {
    if [ -n "${AIOSMTPD_PID:-}" ]; then
        kill "$AIOSMTPD_PID" 2>/dev/null || true
        wait "$AIOSMTPD_PID" 2>/dev/null || true
        AIOSMTPD_PID=
    fi
}
