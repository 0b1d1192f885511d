#!/usr/bin/env bash
# The Ruby binding's tests, the way a user gets it:
#   1. coverage.sh ruby (every function of smtpc.h bound or listed in UNBOUND.txt)
#   2. `gem build` the gemspec (must be valid: licenses, homepage) and
#      `gem install --local` the .gem into a temporary GEM_HOME
#   3. in a temporary project outside the checkout, with only that gem and
#      the system's ffi on GEM_PATH, run the minitest suites (they
#      `require 'smtpc'`, never the source tree); the library comes from
#      the temporary prefix through $SMTPC_LIB (testlib.sh).
# Uses Debian's ruby and ruby-ffi (minitest, net-smtp come with ruby).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/../testlib.sh"

if ! command -v ruby >/dev/null 2>&1 || ! ruby -e 'require "ffi"; require "minitest"; require "net/smtp"' 2>/dev/null; then
    smtpc_log "installing ruby ruby-ffi"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq ruby ruby-ffi >/dev/null || { apt-get update -qq && apt-get install -y -qq ruby ruby-ffi; }
fi
smtpc_build_lib
smtpc_coverage ruby
smtpc_start_servers

proj="$SMTPC_WORK/ruby-project"
mkdir -p "$proj/gems"
(cd "$HERE" && gem build --strict smtpc.gemspec --output "$proj/libsmtpc.gem" 2>&1 | sed 's/^/  gem build: /' >&2)
system_gems="$(ruby -e 'print Gem.path.join(":")')"
GEM_HOME="$proj/gems" GEM_PATH="$proj/gems:$system_gems" \
    gem install --local --no-document "$proj/libsmtpc.gem" 2>&1 | sed 's/^/  gem install: /' >&2
cp "$HERE"/test/test_*.rb "$proj/"
cd "$proj"
export GEM_HOME="$proj/gems" GEM_PATH="$proj/gems:$system_gems"
ruby -e 'require "smtpc"; f = $LOADED_FEATURES.grep(/smtpc\/session/).first
         abort "smtpc loaded from the checkout: #{f}" unless f.start_with?(Gem.dir)
         warn "bindings: ruby: gem libsmtpc #{Smtpc::VERSION} from #{File.dirname(f)}, library #{Smtpc.version}"'
ruby -w -e 'require "./test_smtpc"; require "./test_idioms"' -- --verbose 2>&1 \
    | tee "$SMTPC_WORK/ruby-test.log"
status=${PIPESTATUS[0]}
grep -o 'FIGURE.*' "$SMTPC_WORK/ruby-test.log" >&2 || true
exit "$status"
