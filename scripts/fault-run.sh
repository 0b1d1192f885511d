#!/usr/bin/env bash
# The long fault run: thousands of messages through the fault-injecting proxy
# against Postfix (BDAT), aiosmtpd (lock-step DATA) and smtp-sink (pipelined
# DATA), then the totals. Exits non-zero if any message was falsely accepted,
# refused-but-delivered, not-sent-but-delivered, duplicated or corrupted, if
# the library broke its own contract, or if any test failed.
#
#   scripts/fault-run.sh                  # 3 servers x SEEDS x MESSAGES
#   SEEDS=60 MESSAGES=24 scripts/fault-run.sh
#   SEED_BASE=1000 scripts/fault-run.sh   # another set of seeds
#
# A failure prints its seed and the command that replays it (one seed, one
# test: SMTPC_FAULT_SEED=<seed> cargo test --release --test faults <test>).
# Needs the servers from scripts/install-deps.sh and root (for Postfix).
set -euo pipefail

cd "$(dirname "$0")/.."

SEEDS="${SEEDS:-36}"
MESSAGES="${MESSAGES:-20}"
# Seeds differ from the short default run (which starts at 1).
SEED_BASE="${SEED_BASE:-1000}"
# At least this many messages in all, or the run is too small to mean much.
MIN_MESSAGES="${MIN_MESSAGES:-2000}"

log="$(mktemp -t smtpc-fault-run.XXXXXX.log)"
echo "fault run: ${SEEDS} seeds from ${SEED_BASE} x ${MESSAGES} messages x 3 servers; log: ${log}"

start=$(date +%s)
set +e
SMTPC_FAULT_SEEDS="$SEEDS" SMTPC_FAULT_MESSAGES="$MESSAGES" SMTPC_FAULT_SEED_BASE="$SEED_BASE" \
    cargo test --release --test faults seeded_faults -- --nocapture 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
elapsed=$(( $(date +%s) - start ))

# Add up the FAULT-TOTALS lines (key=value pairs), one per server.
totals="$(grep -a '^FAULT-TOTALS ' "$log" | awk '
    {
        servers++
        for (i = 2; i <= NF; i++) {
            split($i, kv, "=")
            if (kv[1] != "server") sum[kv[1]] += kv[2]
        }
    }
    END {
        printf "servers=%d", servers
        n = split("seeds messages attempts accepted refused not_sent unknown unknown_arrived resent notsent_attempts falsely_accepted refused_delivered notsent_delivered duplicates corrupt contract connections resets fins stalls", keys, " ")
        for (i = 1; i <= n; i++) printf " %s=%d", keys[i], sum[keys[i]]
        printf "\n"
    }')"

get() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<" $totals"; }

echo
echo "================ fault run totals (${elapsed}s) ================"
grep -a '^FAULT-TOTALS ' "$log" || true
printf '%-28s %s\n' \
    "servers" "$(get servers)" \
    "messages" "$(get messages)" \
    "send attempts" "$(get attempts)" \
    "accepted" "$(get accepted)" \
    "refused" "$(get refused)" \
    "not sent (final)" "$(get not_sent)" \
    "not-sent attempts (resent)" "$(get notsent_attempts)" \
    "unknown" "$(get unknown)" \
    "unknown that arrived" "$(get unknown_arrived)" \
    "connections" "$(get connections)" \
    "resets injected" "$(get resets)" \
    "FIN closes injected" "$(get fins)" \
    "stalls injected" "$(get stalls)" \
    "falsely accepted (must be 0)" "$(get falsely_accepted)" \
    "refused but delivered (0)" "$(get refused_delivered)" \
    "not sent but delivered (0)" "$(get notsent_delivered)" \
    "duplicates (must be 0)" "$(get duplicates)" \
    "corrupt/misrouted (0)" "$(get corrupt)" \
    "contract breaches (0)" "$(get contract)"

fail=0
if [ "$rc" -ne 0 ]; then
    echo "FAIL: cargo test exited with $rc (violations above name their seeds)"
    fail=1
fi
if [ "$(get servers)" != 3 ]; then
    echo "FAIL: expected totals from 3 servers, got $(get servers)"
    fail=1
fi
for k in falsely_accepted refused_delivered notsent_delivered duplicates corrupt contract; do
    if [ "$(get "$k")" != 0 ]; then
        echo "FAIL: $k = $(get "$k")"
        fail=1
    fi
done
if [ "$(get messages)" -lt "$MIN_MESSAGES" ]; then
    echo "FAIL: only $(get messages) messages (want at least $MIN_MESSAGES)"
    fail=1
fi
if [ "$(get resets)" -eq 0 ]; then
    echo "FAIL: no reset was injected"
    fail=1
fi
if [ "$fail" -ne 0 ]; then
    echo "fault run FAILED (log: $log)"
    exit 1
fi
echo "fault run passed (log: $log)"
