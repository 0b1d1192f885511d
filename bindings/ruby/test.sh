#!/usr/bin/env bash
# Runs the Ruby binding's minitest suite against private aiosmtpd servers.
# Uses Debian's ruby and ruby-ffi (minitest comes with ruby).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/../testlib.sh"

if ! command -v ruby >/dev/null 2>&1 || ! ruby -e 'require "ffi"; require "minitest"' 2>/dev/null; then
    smtpc_log "installing ruby ruby-ffi"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq ruby ruby-ffi >/dev/null || { apt-get update -qq && apt-get install -y -qq ruby ruby-ffi; }
fi
smtpc_build_lib
smtpc_start_servers

cd "$HERE"
ruby -w -Ilib test/test_smtpc.rb --verbose
