#!/usr/bin/env bash
# Installs everything the test harness needs. Idempotent and quick when all
# is already present: apt is only touched when a package is missing, the venv
# only rebuilt when aiosmtpd 1.4.6 is not importable, npm only run when
# node_modules does not match the lock file.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APT_PKGS=(postfix sasl2-bin libsasl2-modules openssl valgrind pkg-config libssl-dev swaks python3-venv
          clang-14 dovecot-core dovecot-lmtpd)
AIOSMTPD_VERSION=1.4.6

log() { echo "install-deps: $*" >&2; }

# ---- apt ---------------------------------------------------------------
missing=()
for p in "${APT_PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    log "installing apt packages: ${missing[*]}"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    log "apt packages present"
fi

for tool in postfix postconf saslpasswd2 smtp-sink openssl; do
    if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
        log "ERROR: $tool not found after install"; exit 1
    fi
done

# ---- Python venv with aiosmtpd ------------------------------------------
VENV="$REPO/.venv"
if "$VENV/bin/python" -c "import aiosmtpd, sys; sys.exit(0 if aiosmtpd.__version__ == '$AIOSMTPD_VERSION' else 1)" 2>/dev/null; then
    log "venv with aiosmtpd $AIOSMTPD_VERSION present"
else
    log "creating venv at $VENV"
    PY=""
    for cand in /usr/bin/python3 python3; do
        if command -v "$cand" >/dev/null 2>&1; then PY="$cand"; break; fi
    done
    [ -n "$PY" ] || { log "ERROR: no python3"; exit 1; }
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION"
    "$VENV/bin/python" -c "import aiosmtpd; assert aiosmtpd.__version__ == '$AIOSMTPD_VERSION'"
fi

# dkimpy (with PyNaCl for ed25519-sha256) verifies the DKIM signatures of
# tests/message.rs; installed into the same venv when missing.
DKIMPY_VERSION=1.1.8
if "$VENV/bin/python" -c "import importlib.metadata as m, nacl, sys; sys.exit(0 if m.version('dkimpy') == '$DKIMPY_VERSION' else 1)" 2>/dev/null; then
    log "dkimpy $DKIMPY_VERSION present"
else
    log "installing dkimpy $DKIMPY_VERSION into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "dkimpy[ed25519]==$DKIMPY_VERSION"
    "$VENV/bin/python" -c "import dkim, nacl"
fi

# ---- Node smtp-server --------------------------------------------------
NODE_DIR="$REPO/tests/servers/node"
command -v node >/dev/null 2>&1 || { log "ERROR: node not found"; exit 1; }
command -v npm >/dev/null 2>&1 || { log "ERROR: npm not found"; exit 1; }
stamp="$NODE_DIR/node_modules/.package-lock.json"
if [ -f "$stamp" ] && [ ! "$NODE_DIR/package-lock.json" -nt "$stamp" ] \
    && (cd "$NODE_DIR" && node -e "
        const v = (m) => require('./node_modules/' + m + '/package.json').version;
        const lock = require('./package-lock.json').packages;
        for (const [k, e] of Object.entries(lock)) {
            if (k && v(k.replace(/^node_modules\//, '')) !== e.version) process.exit(1);
        }" 2>/dev/null); then
    log "node_modules present"
else
    log "running npm ci in $NODE_DIR"
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi

# ---- language bindings (bindings/) ----------------------------------------
# Go (cgo), Ruby with the ffi gem (minitest and net-smtp come with Debian's
# ruby), g++ and clang-tidy for the C++ binding; Node's packages for
# bindings/node (koffi; typescript, @types/node and nodemailer for its tests)
# from its package-lock.json.
BINDING_PKGS=(golang-go ruby ruby-ffi g++ clang-tidy)
missing=()
for p in "${BINDING_PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    log "installing apt packages for the bindings: ${missing[*]}"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    log "apt packages for the bindings present"
fi
BIND_NODE="$REPO/bindings/node"
if [ -f "$BIND_NODE/node_modules/.package-lock.json" ] \
    && [ ! "$BIND_NODE/package-lock.json" -nt "$BIND_NODE/node_modules/.package-lock.json" ]; then
    log "bindings/node node_modules present"
else
    log "running npm ci in $BIND_NODE"
    (cd "$BIND_NODE" && npm ci --no-audit --no-fund --loglevel=error)
fi

log "done"
