#!/usr/bin/env bash
# Runs the Go binding's tests (go test) against private aiosmtpd servers.
# Uses Debian's golang-go; GOPATH and the build cache stay under target/.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/../testlib.sh"

if ! command -v go >/dev/null 2>&1; then
    smtpc_log "installing golang-go"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq golang-go >/dev/null || { apt-get update -qq && apt-get install -y -qq golang-go; }
fi
smtpc_build_lib
smtpc_start_servers

export GOPATH="$REPO/target/go/path" GOCACHE="$REPO/target/go/cache"
export GOFLAGS=-mod=mod GOPROXY=off GO111MODULE=on GOTOOLCHAIN=local CGO_ENABLED=1
cd "$HERE"
go vet ./...
GODEBUG=cgocheck=2 go test -count=1 -v ./...
