#!/usr/bin/env bash
# The libsmtpc benchmark: libsmtpc against Python smtplib, curl, lettre and
# raw-socket clients, on loopback sinks this script starts and stops itself.
#
#   scripts/bench.sh           full run (5000 messages, 50 MB, 5 repeats, lettre)
#   scripts/bench.sh --smoke   tiny counts for CI (200 messages, 5 MB, 1 run, no lettre)
#
# Installs what is missing (postfix for smtp-sink, curl, python3; apt, only
# when needed), builds bench/ in release, starts smtp-sink and two discard
# sinks (bench/src/bin/discard_sink.rs, with and without CHUNKING) on free
# loopback ports, and prints the report as Markdown on stdout (progress on
# stderr). Exits non-zero only when something failed to run; missed targets
# are reported as ✗, not as a failure.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$REPO/bench"
SMOKE=0
for arg in "$@"; do
    case "$arg" in
        --smoke) SMOKE=1 ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done

log() { echo "bench: $*" >&2; }
T0=$(date +%s)
export PATH="$PATH:/usr/sbin:/sbin"

# ---- dependencies (idempotent: apt only when something is missing) ----------
missing=()
command -v smtp-sink >/dev/null 2>&1 || missing+=(postfix)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    # "No configuration": the system Postfix stays unconfigured and down.
    echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
for tool in smtp-sink curl python3 cargo; do
    command -v "$tool" >/dev/null 2>&1 || { log "ERROR: $tool not found"; exit 1; }
done

# ---- build -----------------------------------------------------------------------
log "building bench/ (release)"
cargo build --release --quiet --manifest-path "$BENCH/Cargo.toml"
DRIVER="$BENCH/target/release/smtpc-bench"
DISCARD="$BENCH/target/release/discard-sink"
LETTRE_ARGS=()
if [ "$SMOKE" = 0 ]; then
    log "building bench/lettre-peer (release)"
    if cargo build --release --quiet --manifest-path "$BENCH/lettre-peer/Cargo.toml"; then
        LETTRE_ARGS=(--lettre "$BENCH/lettre-peer/target/release/lettre-peer")
    else
        log "lettre-peer did not build: lettre is left out"
    fi
fi

# ---- sinks -----------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/smtpc-bench.XXXXXX")"
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for_file() {
    for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.05; done
    return 1
}

# Answers a greeting on 127.0.0.1:$1?
greets() {
    python3 - "$1" <<'EOF'
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
    ok = s.recv(100).startswith(b"220")
    s.sendall(b"QUIT\r\n")
    s.close()
except OSError:
    ok = False
sys.exit(0 if ok else 1)
EOF
}

"$DISCARD" --port-file "$WORK/discard.port" &
PIDS+=($!)
"$DISCARD" --chunking --port-file "$WORK/discard-chunking.port" &
PIDS+=($!)
wait_for_file "$WORK/discard.port" && wait_for_file "$WORK/discard-chunking.port" || {
    log "ERROR: the discard sinks did not start"; exit 1; }
DISCARD_PORT=$(cat "$WORK/discard.port")
DISCARD_CHUNKING_PORT=$(cat "$WORK/discard-chunking.port")

# smtp-sink takes a port number, not 0: probe a free one, retry on a race.
SINK_PORT=""
for _ in 1 2 3 4 5; do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    (cd "$WORK" && exec smtp-sink -u nobody -m 1024 "127.0.0.1:$port" 1024) &
    pid=$!
    for _ in $(seq 50); do
        if greets "$port"; then SINK_PORT=$port; break; fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if [ -n "$SINK_PORT" ]; then PIDS+=("$pid"); break; fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
done
[ -n "$SINK_PORT" ] || { log "ERROR: smtp-sink did not start"; exit 1; }
log "smtp-sink on $SINK_PORT, discard sink on $DISCARD_PORT, with CHUNKING on $DISCARD_CHUNKING_PORT"

# ---- run -------------------------------------------------------------------------
SMOKE_ARGS=()
[ "$SMOKE" = 1 ] && SMOKE_ARGS=(--smoke)
status=0
"$DRIVER" run --smtp-sink "$SINK_PORT" --discard "$DISCARD_PORT" \
    --discard-chunking "$DISCARD_CHUNKING_PORT" --workdir "$WORK" \
    "${SMOKE_ARGS[@]}" "${LETTRE_ARGS[@]}" || status=$?
log "done in $(( $(date +%s) - T0 )) s (build and setup included)"
exit "$status"
