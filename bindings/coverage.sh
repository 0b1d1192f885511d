#!/usr/bin/env bash
# API coverage of one binding, read from the header at test time:
#
#   bindings/coverage.sh cpp|go|ruby|node
#
# Takes every function include/smtpc.h declares (or $SMTPC_HEADER) and fails
# when the binding neither calls it nor lists it in bindings/<lang>/UNBOUND.txt
# with a reason. So the next export cannot be forgotten: adding a function
# to the C API fails every binding's tests until each binds it or says why
# not. UNBOUND.txt lines are "name  reason..." ('#' starts a comment); an
# entry without a reason, for a function the header no longer declares, or
# for a function the binding does bind, fails too, so the list stays true.
#
# "Calls it" means, comments stripped:
#   go    C.<name>( in the package's non-test .go files
#   ruby  :<name> (the attach table) in lib/**/*.rb
#   node  <name>( in a prototype string of lib/*.js or index.js
#   cpp   <name> in smtpc.hpp (called, or passed as a function pointer)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
lang="${1:?usage: coverage.sh cpp|go|ruby|node}"
header="${SMTPC_HEADER:-$REPO/include/smtpc.h}"
dir="$HERE/$lang"
[ -d "$dir" ] || { echo "coverage: no binding $lang" >&2; exit 2; }
[ -f "$header" ] || { echo "coverage: no header $header" >&2; exit 2; }

# The same extraction as the Makefile's version script (`make symbols`).
mapfile -t functions < <(sed -n -e '/^typedef/d' \
    -e 's/^[A-Za-z_][A-Za-z0-9_ *]*[ *]\([A-Za-z_][A-Za-z0-9_]*\)(.*/\1/p' "$header" | sort -u)
[ ${#functions[@]} -gt 0 ] || { echo "coverage: no functions found in $header" >&2; exit 2; }

# The binding's source, comments stripped (good enough for these files:
# no comment markers inside the strings that matter).
case "$lang" in
go)
    files=$(find "$dir" -maxdepth 1 -name '*.go' ! -name '*_test.go' | sort)
    src=$(sed -e 's://.*$::' $files)
    pattern() { printf 'C\\.%s\\(' "$1"; }
    ;;
ruby)
    files=$(find "$dir/lib" -name '*.rb' | sort)
    src=$(sed -e 's/^[[:space:]]*#.*$//' $files)
    pattern() { printf ':%s\\b' "$1"; }
    ;;
node)
    files=$(find "$dir" -maxdepth 2 -name '*.js' ! -path '*/node_modules/*' ! -path '*/test/*' | sort)
    src=$(sed -e 's:^[[:space:]]*//.*$::' $files)
    pattern() { printf '\\b%s\\(' "$1"; }
    ;;
cpp)
    files="$dir/smtpc.hpp"
    src=$(sed -e 's://.*$::' $files)
    pattern() { printf '\\b%s\\b' "$1"; } # called, or passed as &name
    ;;
*)
    echo "coverage: unknown binding $lang" >&2
    exit 2
    ;;
esac

declare -A unbound=()
problems=0
list="$dir/UNBOUND.txt"
if [ -f "$list" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
        line="${line%%#*}"
        [ -n "${line//[[:space:]]/}" ] || continue
        name=$(awk '{print $1}' <<<"$line")
        reason=$(sed -e 's/^[[:space:]]*[^[:space:]]*[[:space:]]*//' <<<"$line")
        if [ -z "$reason" ]; then
            echo "coverage: $lang/UNBOUND.txt: $name has no reason" >&2
            problems=$((problems + 1))
        fi
        unbound[$name]="$reason"
    done <"$list"
fi

bound=0
missing=()
for fn in "${functions[@]}"; do
    if grep -qE "$(pattern "$fn")" <<<"$src"; then
        bound=$((bound + 1))
        if [ -n "${unbound[$fn]+x}" ]; then
            echo "coverage: $lang binds $fn but UNBOUND.txt lists it: drop the entry" >&2
            problems=$((problems + 1))
        fi
    elif [ -z "${unbound[$fn]+x}" ]; then
        missing+=("$fn")
    fi
done
for name in "${!unbound[@]}"; do
    if ! printf '%s\n' "${functions[@]}" | grep -qx "$name"; then
        echo "coverage: $lang/UNBOUND.txt lists $name, which $header does not declare" >&2
        problems=$((problems + 1))
    fi
done

echo "coverage: $lang binds $bound of ${#functions[@]} functions of $(basename "$header");" \
    "${#unbound[@]} listed in UNBOUND.txt${unbound[*]:+ (${!unbound[*]})}"
if [ ${#missing[@]} -gt 0 ]; then
    echo "coverage: FAIL: $lang neither binds nor lists in $lang/UNBOUND.txt:" >&2
    printf '    %s\n' "${missing[@]}" >&2
    problems=$((problems + ${#missing[@]}))
fi
if [ "$problems" -ne 0 ]; then
    exit 1
fi
