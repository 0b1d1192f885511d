#!/usr/bin/env bash
# Packaging test: `make install` into a temporary prefix, then check the
# installed tree (smtpc.h and the C++ binding's smtpc.hpp beside it), the
# SONAME, the exported symbols (exactly the functions smtpc.h declares, each
# with the version node SMTPC_0: objdump -T), and that a C program builds
# and runs with nothing but `pkg-config smtpc` (shared and static) and binds
# its symbols at SMTPC_0.
#
# Run after `cargo build --release` (make install re-runs it; it is a no-op
# when the build is fresh). Exit status non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

tmp=$(mktemp -d "${TMPDIR:-/tmp}/smtpc-packaging.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

failures=0
ok() { printf '  ok    %s\n' "$*"; }
fail() { printf '  FAIL  %s\n' "$*" >&2; failures=$((failures + 1)); }
check() { # check DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}

version=$(sed -n '/^\[package\]/,/^\[/s/^version[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' Cargo.toml)
major=${version%%.*}
[ -n "$version" ] || { echo "cannot read the version from Cargo.toml" >&2; exit 1; }
echo "libsmtpc $version (SONAME major $major)"

echo "== make install PREFIX=$tmp/prefix"
prefix=$tmp/prefix
lib=$prefix/lib
if ! make -s install PREFIX="$prefix" >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log" >&2
    echo "make install failed" >&2
    exit 1
fi
grep -E '^smtpc.pc:' "$tmp/install.log" | sed 's/^/  /' || true

echo "== installed files"
(cd "$prefix" && find . \( -type f -o -type l \) | sort | sed 's/^/  /')
check "lib/libsmtpc.so.$version is a regular file" test -f "$lib/libsmtpc.so.$version" -a ! -L "$lib/libsmtpc.so.$version"
check "lib/libsmtpc.so.$major -> libsmtpc.so.$version" \
    test "$(readlink "$lib/libsmtpc.so.$major")" = "libsmtpc.so.$version"
check "lib/libsmtpc.so -> libsmtpc.so.$version" \
    test "$(readlink "$lib/libsmtpc.so")" = "libsmtpc.so.$version"
check "lib/libsmtpc.a" test -f "$lib/libsmtpc.a"
check "include/smtpc.h (same as include/smtpc.h in the tree)" cmp -s "$prefix/include/smtpc.h" include/smtpc.h
check "include/smtpc.hpp (the C++ binding, same as bindings/cpp/smtpc.hpp)" \
    cmp -s "$prefix/include/smtpc.hpp" bindings/cpp/smtpc.hpp
check "lib/pkgconfig/smtpc.pc" test -f "$lib/pkgconfig/smtpc.pc"

echo "== smtpc.pc"
sed 's/^/  | /' "$lib/pkgconfig/smtpc.pc"
export PKG_CONFIG_PATH=$lib/pkgconfig
unset PKG_CONFIG_LIBDIR || true
check "pkg-config --modversion smtpc = $version" test "$(pkg-config --modversion smtpc)" = "$version"
check "pkg-config --validate smtpc" pkg-config --validate smtpc

echo "== SONAME"
soname=$(readelf -d "$lib/libsmtpc.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
check "readelf -d: SONAME = libsmtpc.so.$major (got '${soname}')" test "$soname" = "libsmtpc.so.$major"

echo "== exported symbols (nm -D --defined-only)"
# (type A is the version node SMTPC_0 itself, not a symbol)
nm -D --defined-only "$lib/libsmtpc.so.$version" | awk '$2 != "A" {print $NF}' | sed 's/@.*//' | sort -u >"$tmp/symbols"
count=$(wc -l <"$tmp/symbols")
echo "  $count symbols:"
column -c 100 "$tmp/symbols" 2>/dev/null | sed 's/^/    /' || sed 's/^/    /' "$tmp/symbols"
others=$(grep -v -E '^(smtp_session_|smtp_message_|smtpc_)' "$tmp/symbols" || true)
if [ -z "$others" ]; then
    ok "only smtp_session_*, smtp_message_* and smtpc_* are exported"
else
    fail "symbols outside smtp_session_* / smtp_message_* / smtpc_* are exported:"
    printf '          %s\n' $others >&2
fi
for sym in smtp_session_new smtp_session_free smtp_session_connect smtp_session_connect_tls \
    smtp_session_ehlo smtp_session_starttls smtp_session_login smtp_session_sendmail \
    smtp_session_quit smtp_session_close smtpc_version smtpc_strerror; do
    grep -qx "$sym" "$tmp/symbols" || fail "core symbol $sym is not exported"
done
ok "core symbols exported (smtp_session_new/_free/_connect/_sendmail/..., smtpc_version, smtpc_strerror)"
# Every function the installed header declares is exported.
sed -n -e '/^typedef/d' -e 's/^[A-Za-z_][A-Za-z0-9_ *]*[ *]\([A-Za-z_][A-Za-z0-9_]*\)(.*/\1/p' \
    "$prefix/include/smtpc.h" | sort -u >"$tmp/declared"
missing=$(comm -23 "$tmp/declared" "$tmp/symbols")
if [ -z "$missing" ]; then
    ok "all $(wc -l <"$tmp/declared") functions declared in smtpc.h are exported"
else
    fail "declared in smtpc.h but not exported: $(echo $missing)"
fi
extra=$(comm -13 "$tmp/declared" "$tmp/symbols")
if [ -z "$extra" ]; then
    ok "nothing is exported that smtpc.h does not declare"
else
    fail "exported but not declared in smtpc.h: $(echo $extra)"
fi

echo "== symbol versions (objdump -T)"
# Defined dynamic symbols: "ADDR g DF .text SIZE VERSION NAME"; the version
# node itself appears as an *ABS* entry named SMTPC_0.
objdump -T "$lib/libsmtpc.so.$version" | awk '$2 ~ /^[gw]/ && $0 !~ /\*UND\*/ { print $(NF-1), $NF }' \
    | grep -v -x 'SMTPC_0 SMTPC_0' | sort -k2 >"$tmp/versioned"
sed 's/^/    /' "$tmp/versioned" | head -5
echo "    ... ($(wc -l <"$tmp/versioned") in all)"
unversioned=$(awk '$1 != "SMTPC_0" { print $2 "(" $1 ")" }' "$tmp/versioned")
if [ -z "$unversioned" ] && [ -s "$tmp/versioned" ]; then
    ok "every exported symbol carries the version node SMTPC_0"
else
    fail "exported without SMTPC_0: $(echo $unversioned)"
fi
others=$(awk '{ print $2 }' "$tmp/versioned" | grep -v -E '^(smtp_session_|smtp_message_|smtpc_)' || true)
check "objdump -T: only smtp_session_* / smtp_message_* / smtpc_* are exported${others:+ (not: $(echo $others))}" test -z "$others"
check "objdump -T: the version node SMTPC_0 is defined" \
    sh -c "objdump -T '$lib/libsmtpc.so.$version' | grep -q -E 'SMTPC_0 +SMTPC_0\$'"

echo "== C program built with pkg-config only"
cat >"$tmp/vercheck.c" <<'EOF'
#include <smtpc.h>

#include <stdio.h>
#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)

int main(void)
{
    const char *lib = smtpc_version();
    const char *hdr = STR(SMTPC_VERSION_MAJOR) "." STR(SMTPC_VERSION_MINOR) "." STR(SMTPC_VERSION_PATCH);
    int bad = 0;
    if (lib == NULL || strcmp(lib, SMTPC_VERSION_STRING) != 0) {
        fprintf(stderr, "smtpc_version() = %s, header SMTPC_VERSION_STRING = %s\n",
                lib ? lib : "(null)", SMTPC_VERSION_STRING);
        bad = 1;
    }
    if (strcmp(hdr, SMTPC_VERSION_STRING) != 0) {
        fprintf(stderr, "MAJOR.MINOR.PATCH = %s, SMTPC_VERSION_STRING = %s\n", hdr, SMTPC_VERSION_STRING);
        bad = 1;
    }
    smtp_session *s = smtp_session_new();
    if (s == NULL) {
        fprintf(stderr, "smtp_session_new() returned NULL\n");
        return 1;
    }
    if (smtp_session_is_connected(s) != 0) {
        fprintf(stderr, "a new session claims to be connected\n");
        bad = 1;
    }
    smtp_session_free(s);
    if (smtpc_strerror(SMTPC_E_NULL) == NULL) {
        fprintf(stderr, "smtpc_strerror(SMTPC_E_NULL) returned NULL\n");
        bad = 1;
    }
    if (!bad)
        printf("smtpc_version() = %s = SMTPC_VERSION_STRING = %s\n", lib, hdr);
    return bad;
}
EOF
cc_flags="-std=c99 -Wall -Wextra -Werror -pedantic"
cflags=$(pkg-config --cflags smtpc)
libs=$(pkg-config --libs smtpc)
echo "  pkg-config --cflags smtpc: $cflags"
echo "  pkg-config --libs smtpc:   $libs"
case " $cflags $libs " in
*"$top/include"* | *"$top/target"*) fail "pkg-config flags point into the build tree" ;;
esac

# shellcheck disable=SC2086
if cc $cc_flags $cflags -o "$tmp/vercheck" "$tmp/vercheck.c" $libs; then
    ok "compiled and linked against the shared library"
    needed=$(readelf -d "$tmp/vercheck" | sed -n 's/.*(NEEDED).*\[\(libsmtpc[^]]*\)\].*/\1/p')
    check "program needs libsmtpc.so.$major (got '$needed')" test "$needed" = "libsmtpc.so.$major"
    if out=$(LD_LIBRARY_PATH=$lib "$tmp/vercheck"); then
        ok "ran with LD_LIBRARY_PATH=\$prefix/lib: $out"
    else
        fail "shared program failed"
    fi
    check "the program binds smtpc_version@SMTPC_0" \
        sh -c "objdump -T '$tmp/vercheck' | grep -q -E '\\(SMTPC_0\\) +smtpc_version\$'"
    resolved=$(LD_LIBRARY_PATH=$lib ldd "$tmp/vercheck" | sed -n 's/.*libsmtpc\.so[^ ]* => \([^ ]*\).*/\1/p')
    check "the loader resolves libsmtpc from the prefix ($resolved)" test "$resolved" = "$lib/libsmtpc.so.$major"
else
    fail "could not build the program against the shared library"
fi

echo "== static link (pkg-config --static, libsmtpc.a)"
static_libs=$(pkg-config --static --libs smtpc)
echo "  pkg-config --static --libs smtpc: $static_libs"
# -lsmtpc would pick the .so; -l:libsmtpc.a asks for the archive from the
# same -L directory.
static_libs=${static_libs/-lsmtpc/-l:libsmtpc.a}
# shellcheck disable=SC2086
if cc $cc_flags $(pkg-config --static --cflags smtpc) -o "$tmp/vercheck-static" "$tmp/vercheck.c" $static_libs; then
    ok "compiled and linked against libsmtpc.a"
    if readelf -d "$tmp/vercheck-static" | grep -q 'NEEDED.*libsmtpc'; then
        fail "the static program still needs libsmtpc.so"
    else
        ok "the static program does not need libsmtpc.so"
    fi
    if out=$(env -u LD_LIBRARY_PATH "$tmp/vercheck-static"); then
        ok "ran without LD_LIBRARY_PATH: $out"
    else
        fail "static program failed"
    fi
else
    fail "could not build the program against libsmtpc.a with pkg-config --static"
fi

if [ -f examples-c/verify.c ]; then
    echo "== examples-c/verify.c with pkg-config"
    mkdir -p "$tmp/examples"
    if [ -f examples-c/Makefile ] && grep -q 'PKGCONFIG' examples-c/Makefile; then
        # Build out of tree so the examples' own build products are untouched.
        if make -s -C "$tmp/examples" -f "$top/examples-c/Makefile" PKGCONFIG=1 verify >"$tmp/examples.log" 2>&1; then
            ok "make -f examples-c/Makefile PKGCONFIG=1 verify"
        else
            sed 's/^/    /' "$tmp/examples.log" >&2
            fail "make -f examples-c/Makefile PKGCONFIG=1 verify"
        fi
    else
        # shellcheck disable=SC2086
        if cc $cc_flags $cflags -o "$tmp/examples/verify" examples-c/verify.c $libs; then
            ok "cc examples-c/verify.c \$(pkg-config --cflags --libs smtpc)"
        else
            fail "examples-c/verify.c does not build with pkg-config"
        fi
    fi
    if [ -x "$tmp/examples/verify" ]; then
        # Usage error path: runs the program (loads the library) without a server.
        LD_LIBRARY_PATH=$lib "$tmp/examples/verify" >/dev/null 2>&1 && rc=0 || rc=$?
        check "examples verify runs (usage, exit $rc, not a loader failure 127)" test "$rc" -ne 127
        needed=$(readelf -d "$tmp/examples/verify" | sed -n 's/.*(NEEDED).*\[\(libsmtpc[^]]*\)\].*/\1/p')
        check "verify needs libsmtpc.so.$major" test "$needed" = "libsmtpc.so.$major"
        if readelf -d "$tmp/examples/verify" | grep -E 'R(UN)?PATH' | grep -q "$top"; then
            fail "verify has an rpath into the build tree"
        fi
    fi
fi

echo "== make uninstall"
make -s uninstall PREFIX="$prefix" >/dev/null
left=$(cd "$prefix" && find . \( -type f -o -type l \) | sort)
check "make uninstall removed every installed file" test -z "$left"

if [ "$failures" -ne 0 ]; then
    echo "packaging: $failures check(s) failed" >&2
    exit 1
fi
echo "packaging: all checks passed"
