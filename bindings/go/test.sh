#!/usr/bin/env bash
# The Go binding's tests, against the library installed into a temporary
# prefix (testlib.sh) and found through pkg-config:
#   1. coverage.sh go (every function of smtpc.h bound or listed in UNBOUND.txt)
#   2. go vet, go test -race -v (GODEBUG=cgocheck=2) in bindings/go
#   3. a fresh module in a temporary directory, outside the checkout, that
#      requires github.com/libsmtpc/libsmtpc/bindings/go with a replace
#      directive pointing here (as the README tells users), builds with
#      `#cgo pkg-config: smtpc` alone and sends a message.
# Uses Debian's golang-go; GOPATH and the build cache stay under the target dir.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/../testlib.sh"

if ! command -v go >/dev/null 2>&1; then
    smtpc_log "installing golang-go"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq golang-go >/dev/null || { apt-get update -qq && apt-get install -y -qq golang-go; }
fi
smtpc_build_lib
smtpc_coverage go
smtpc_start_servers

export GOPATH="$SMTPC_TARGET_DIR/go/path" GOCACHE="$SMTPC_TARGET_DIR/go/cache"
export GOFLAGS=-mod=mod GOPROXY=off GO111MODULE=on GOTOOLCHAIN=local CGO_ENABLED=1
module=github.com/libsmtpc/libsmtpc/bindings/go
cd "$HERE"
go vet ./...
GODEBUG=cgocheck=2 go test -race -count=1 -v ./... 2>&1 | tee "$SMTPC_WORK/go-test.log"
grep 'FIGURE' "$SMTPC_WORK/go-test.log" | sed 's/^ *//' >&2 || true

smtpc_log "go: a fresh module outside the checkout, with a replace directive"
proj="$SMTPC_WORK/go-project"
mkdir -p "$proj"
cat >"$proj/go.mod" <<EOM
module example.com/sendone

go 1.19

require $module v0.0.0

replace $module => $HERE
EOM
cat >"$proj/main.go" <<'EOM'
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	smtpc "github.com/libsmtpc/libsmtpc/bindings/go"
)

func main() {
	port, _ := strconv.Atoi(os.Getenv("SMTPC_TEST_PORT"))
	s := smtpc.New()
	defer s.Close()
	if err := s.SetCAFile(os.Getenv("SMTPC_TEST_CA")); err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := s.ConnectContext(ctx, "localhost", uint16(port)); err != nil {
		panic(err)
	}
	s.StarttlsContext(ctx)
	s.EhloContext(ctx, "")
	code, _, err := s.LoginContext(ctx, os.Getenv("SMTPC_TEST_USER"), os.Getenv("SMTPC_TEST_PASS"))
	if err != nil || code != 235 {
		panic(fmt.Sprint("login ", code, err))
	}
	code, _, err = s.SendmailContext(ctx, "me@example.com", []string{"you@example.com"},
		[]byte("Subject: from a fresh Go module\n\nhello\n"))
	if err != nil || s.Outcome() != smtpc.OutcomeAccepted {
		panic(fmt.Sprint("sendmail ", code, err))
	}
	s.QuitContext(ctx)
	fmt.Printf("fresh module: libsmtpc %s, sendmail %d, outcome %v\n", smtpc.Version(), code, s.Outcome())
}
EOM
(cd "$proj" && go vet . && go build -o sendone . && ./sendone)
ldd "$proj/sendone" | grep -q "$SMTPC_PREFIX/lib/libsmtpc.so.0" \
    || { smtpc_log "ERROR: the program did not load the installed libsmtpc"; exit 1; }
smtpc_log "go: ok"
