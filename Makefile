# libsmtpc: build with cargo, install like a C library.
#
#   make                                  cargo build --release, then links
#                                         release/dist/libsmtpc.so.X.Y.Z from
#                                         libsmtpc.a with symbol versions
#   make install PREFIX=/usr/local DESTDIR=
#                                         lib/libsmtpc.so.X.Y.Z (+ .so.X and .so
#                                         symlinks), lib/libsmtpc.a,
#                                         include/smtpc.h, include/smtpc.hpp
#                                         (C++ binding), lib/pkgconfig/smtpc.pc
#   make symbols                          the functions smtpc.h declares
#   make uninstall PREFIX=... DESTDIR=    removes exactly those files
#   make check                            tests/packaging.sh (installs into a
#                                         temporary prefix and links against it)
#   make clean                            removes what this Makefile generated
#                                         (not target/: use cargo clean)
#
# LIBDIR, INCLUDEDIR and PKGCONFIGDIR can be overridden (e.g.
# LIBDIR=/usr/lib/x86_64-linux-gnu). The library version and SONAME major are
# read from Cargo.toml; build.rs sets the same SONAME (libsmtpc.so.MAJOR).
#
# Symbol exports and versions: the shared library that `make install`
# ships is not cargo's cdylib. rustc links the cdylib with its own anonymous
# version script that lists every #[no_mangle] function as global and makes
# everything else local. A second, project version script with a named node
# cannot be added to that link: GNU ld refuses to combine rustc's anonymous
# version tag with any other ("anonymous version tag cannot be combined
# with other version tags"), and rust-lld accepts it but gives rustc's exact
# global names precedence over every other pattern, so the named node would
# stay empty and its `local: *` would hide nothing more.
#
# So `make` links the shared library itself, from the static archive cargo
# builds (libsmtpc.a holds the same code, std included):
#   cc -shared -Wl,--whole-archive libsmtpc.a -Wl,--no-whole-archive
#      -Wl,--version-script=smtpc.map -Wl,-soname,libsmtpc.so.MAJOR -Wl,-z,defs
#      <Libs.private>
# into $(CARGO_TARGET_DIR)/release/dist/ (libsmtpc.so.X.Y.Z, with the .so.MAJOR
# and .so links beside it). smtpc.map is generated from include/smtpc.h at
# build time: every function the header declares goes into the node SMTPC_0
# (as libcurl's CURL_OPENSSL_4, zlib's ZLIB_1.2.x), everything else is
# local, so a new export is versioned without anyone editing a list.
# tests/packaging.sh checks with objdump -T that every exported symbol
# carries SMTPC_0 and that nothing else is exported. Until the ABI is
# frozen at 1.0 the node stays SMTPC_0; an incompatible change after that
# gets a new node (SMTPC_1) and a new SONAME major.

PREFIX ?= /usr/local
EXEC_PREFIX ?= $(PREFIX)
LIBDIR ?= $(EXEC_PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR ?=

CARGO ?= cargo
RUSTC ?= rustc
PKG_CONFIG ?= pkg-config
INSTALL ?= install
INSTALL_PROGRAM ?= $(INSTALL) -m 755
INSTALL_DATA ?= $(INSTALL) -m 644

TOP := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
CARGO_TARGET_DIR ?= $(TOP)/target
RELEASE := $(CARGO_TARGET_DIR)/release
# cargo's JSON messages from the last `make`: the build scripts' link libs.
BUILD_JSON := $(RELEASE)/smtpc-build.json
PC_FILE := $(RELEASE)/smtpc.pc

# The [package] version from Cargo.toml, e.g. 0.1.0; MAJOR is its first part.
VERSION := $(shell sed -n '/^\[package\]/,/^\[/s/^version[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' $(TOP)/Cargo.toml)
ifeq ($(VERSION),)
$(error cannot read the package version from $(TOP)/Cargo.toml)
endif
MAJOR := $(word 1,$(subst ., ,$(VERSION)))

LIB_REAL := libsmtpc.so.$(VERSION)
LIB_SONAME := libsmtpc.so.$(MAJOR)

# Paths written into smtpc.pc, relative to ${prefix} where they can be.
PC_EXEC_PREFIX := $(if $(filter $(PREFIX),$(EXEC_PREFIX)),$${prefix},$(EXEC_PREFIX))
PC_LIBDIR := $(patsubst $(EXEC_PREFIX)/%,$${exec_prefix}/%,$(LIBDIR))
PC_INCLUDEDIR := $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))

# The shared library make builds and installs (see "Symbol exports" above).
DIST := $(RELEASE)/dist
MAP := $(RELEASE)/smtpc.map
# The native libraries libsmtpc.a needs (Libs.private), one line.
LIBS_FILE := $(RELEASE)/smtpc-libs.txt
HEADER := $(TOP)/include/smtpc.h
CXX_HEADER := $(TOP)/bindings/cpp/smtpc.hpp
CC ?= cc

# The functions include/smtpc.h declares, one per line: cbindgen writes each
# declaration on one line ("int smtp_session_noop(smtp_session *s, ...);"),
# starting in column 0; typedefs of callbacks are skipped.
HEADER_FUNCTIONS = sed -n -e '/^typedef/d' \
	-e 's/^[A-Za-z_][A-Za-z0-9_ *]*[ *]\([A-Za-z_][A-Za-z0-9_]*\)(.*/\1/p' $(HEADER)

.PHONY: all cargo install uninstall check clean pc map symbols FORCE

all: cargo
	@$(MAKE) --no-print-directory -f $(TOP)/Makefile $(DIST)/$(LIB_REAL)

cargo:
	@mkdir -p $(RELEASE)
	cd $(TOP) && $(CARGO) build --release --message-format=json-render-diagnostics > $(BUILD_JSON).tmp
	@mv $(BUILD_JSON).tmp $(BUILD_JSON)

# Prints the functions the header declares (what SMTPC_0 exports).
symbols:
	@$(HEADER_FUNCTIONS)

map: $(MAP)

$(MAP): $(HEADER) $(TOP)/Makefile
	@mkdir -p $(RELEASE)
	@set -e; names=$$($(HEADER_FUNCTIONS)); \
	if [ -z "$$names" ]; then echo "no functions found in $(HEADER)" >&2; exit 1; fi; \
	{ echo "/* Generated by the Makefile from include/smtpc.h: do not edit. */"; \
	  echo "SMTPC_0 {"; echo "  global:"; \
	  for n in $$names; do echo "    $$n;"; done; \
	  echo "  local:"; echo "    *;"; echo "};"; } > $@.tmp; \
	mv $@.tmp $@; \
	echo "smtpc.map: $$(echo $$names | wc -w) functions in SMTPC_0"

# Libs.private is what rustc's --print native-static-libs reports for
# libsmtpc.a, derived without rebuilding the crate:
#  1. the libraries the dependencies' build scripts link (cargo:rustc-link-lib,
#     from cargo's build-script-executed messages; openssl-sys gives ssl and
#     crypto). static= ones are bundled into the .a and skipped.
#  2. what the standard library needs on this target: rustc's
#     --print native-static-libs for an empty staticlib (e.g. -lgcc_s -lutil
#     -lrt -lpthread -lm -ldl -lc).
# The same list links the shared library.
$(LIBS_FILE): $(BUILD_JSON)
	@set -e; \
	deps=$$(sed -n 's/.*"reason":"build-script-executed".*"linked_libs":\[\([^]]*\)\].*/\1/p' $(BUILD_JSON) \
		| tr ',' '\n' | tr -d '" ' \
		| while IFS= read -r lib; do \
			case "$$lib" in \
			''|static=*|static:*|framework=*|framework:*) ;; \
			*=*) lib=$${lib#*=}; echo "-l$${lib%%:*}" ;; \
			*) echo "-l$${lib%%:*}" ;; \
			esac; \
		done); \
	probe=$$(mktemp -d); \
	std=$$(printf '' | $(RUSTC) --crate-type staticlib --crate-name smtpc_probe \
		--print native-static-libs --out-dir "$$probe" - 2>&1 \
		| sed -n 's/.*native-static-libs: *//p'); \
	rm -rf "$$probe"; \
	if [ -z "$$std" ]; then echo "cannot get native-static-libs from $(RUSTC)" >&2; exit 1; fi; \
	for l in $$deps $$std; do echo "$$l"; done | awk '!seen[$$0]++' | tr '\n' ' ' | sed 's/ $$//' > $@.tmp; \
	echo >> $@.tmp; \
	mv $@.tmp $@

# Relinked whenever cargo rewrote the archive or the header changed.
$(DIST)/$(LIB_REAL): $(RELEASE)/libsmtpc.a $(MAP) $(LIBS_FILE)
	@mkdir -p $(DIST)
	$(CC) -shared -o $@.tmp \
		-Wl,--whole-archive $(RELEASE)/libsmtpc.a -Wl,--no-whole-archive \
		-Wl,--version-script=$(MAP) -Wl,-soname,$(LIB_SONAME) -Wl,-z,defs -Wl,--gc-sections \
		$$(cat $(LIBS_FILE))
	@mv $@.tmp $@
	@ln -sf $(LIB_REAL) $(DIST)/$(LIB_SONAME)
	@ln -sf $(LIB_REAL) $(DIST)/libsmtpc.so

# Requires.private: openssl is added when OpenSSL is linked dynamically and
# has a pkg-config file, so --static also gets OpenSSL's own private libs.
pc: $(PC_FILE)

$(PC_FILE): $(TOP)/smtpc.pc.in all FORCE
	@set -e; \
	$(MAKE) --no-print-directory -s -f $(TOP)/Makefile $(LIBS_FILE); \
	libs=$$(cat $(LIBS_FILE)); \
	req=; \
	case " $$libs " in *" -lssl "*) \
		if $(PKG_CONFIG) --exists openssl 2>/dev/null; then req=openssl; fi ;; \
	esac; \
	sed -e 's|@PREFIX@|$(PREFIX)|g' \
	    -e 's|@EXEC_PREFIX@|$(PC_EXEC_PREFIX)|g' \
	    -e 's|@LIBDIR@|$(PC_LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(PC_INCLUDEDIR)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' \
	    -e "s|@REQUIRES_PRIVATE@|$$req|g" \
	    -e "s|@LIBS_PRIVATE@|$$libs|g" \
	    $(TOP)/smtpc.pc.in > $@.tmp; \
	mv $@.tmp $@; \
	echo "smtpc.pc: Libs.private: $$libs; Requires.private: $${req:-(none)}"

# smtpc.hpp (the C++ binding, header-only) goes beside smtpc.h.
install: all $(PC_FILE)
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	$(INSTALL_PROGRAM) $(DIST)/$(LIB_REAL) $(DESTDIR)$(LIBDIR)/$(LIB_REAL)
	ln -sf $(LIB_REAL) $(DESTDIR)$(LIBDIR)/$(LIB_SONAME)
	ln -sf $(LIB_REAL) $(DESTDIR)$(LIBDIR)/libsmtpc.so
	$(INSTALL_DATA) $(RELEASE)/libsmtpc.a $(DESTDIR)$(LIBDIR)/libsmtpc.a
	$(INSTALL_DATA) $(HEADER) $(DESTDIR)$(INCLUDEDIR)/smtpc.h
	$(INSTALL_DATA) $(CXX_HEADER) $(DESTDIR)$(INCLUDEDIR)/smtpc.hpp
	$(INSTALL_DATA) $(PC_FILE) $(DESTDIR)$(PKGCONFIGDIR)/smtpc.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/$(LIB_REAL) $(DESTDIR)$(LIBDIR)/$(LIB_SONAME) \
	      $(DESTDIR)$(LIBDIR)/libsmtpc.so $(DESTDIR)$(LIBDIR)/libsmtpc.a \
	      $(DESTDIR)$(INCLUDEDIR)/smtpc.h $(DESTDIR)$(INCLUDEDIR)/smtpc.hpp \
	      $(DESTDIR)$(PKGCONFIGDIR)/smtpc.pc

check:
	$(TOP)/tests/packaging.sh

clean:
	rm -f $(BUILD_JSON) $(BUILD_JSON).tmp $(PC_FILE) $(PC_FILE).tmp $(MAP) $(MAP).tmp \
	      $(LIBS_FILE) $(LIBS_FILE).tmp
	rm -rf $(DIST)
