# SPDX-License-Identifier: Apache-2.0
# mod_mcp_auth build. apxs supplies httpd's compiler flags and install
# location; the engine in src/ is compiled once per flavour into build/ and
# linked into the module, the mcp-auth-token CLI and the unit tests.
#
#   make -f apxs.mk            module + CLI
#   make -f apxs.mk test       install test dependencies, build, unit + integration tests
#   make -f apxs.mk deps       install test dependencies only (apt-get as root, npm ci in test/)
#   make -f apxs.mk lint       SPDX lines, clang-format, cppcheck, clang-tidy (see the end of this file)
#   make -f apxs.mk check-fast unit tests + the fast integration tests (not slow, no Node.js), for the edit-test loop
#   make -f apxs.mk demo       start a protected demo endpoint on 127.0.0.1:8080
#   make -f apxs.mk install    install the module (apxs -i) and conf/mcp_auth.load
#   make -f apxs.mk deb        the Debian package in build/deb/ (see the end of this file)

APXS      ?= $(shell command -v apxs 2>/dev/null || command -v apxs2 2>/dev/null || echo apxs)
CC        ?= cc
PYTHON    ?= /usr/bin/python3
BUILD     ?= build
HTTPD_INC := $(shell $(APXS) -q INCLUDEDIR 2>/dev/null)
APR_INC   := $(shell apr-1-config --includes 2>/dev/null) $(shell apu-1-config --includes 2>/dev/null)
APR_LIBS  := $(shell apr-1-config --link-ld 2>/dev/null) $(shell apu-1-config --link-ld 2>/dev/null)
LIBS      := -ljansson -lcurl -lcrypto -lm
# Unused parameters warn (-Wextra): in the module, the engine and the CLI a
# parameter a hook's or callback's signature imposes is marked `(void)x;`,
# so an unused one that is not imposed (a forgotten check) fails the build.
# Test programs alone add -Wno-unused-parameter: cmocka imposes
# `void **state` on every unit test, libFuzzer `int *argc, char ***argv` on
# every fuzz target's initializer, and most do not need them.
WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2 -Wmissing-prototypes -Wpointer-arith \
             -Wundef
TEST_WARN := -Wno-unused-parameter
CFLAGS    ?= -O2 -g
# CPPFLAGS and LDFLAGS: empty unless given (the Debian build passes dpkg-buildflags' hardening).
CPPFLAGS  ?=
LDFLAGS   ?=
SAN       ?=
ALL_CFLAGS = -std=gnu11 -fPIC -D_REENTRANT -D_GNU_SOURCE $(WARN) $(CPPFLAGS) $(CFLAGS) $(SAN) -I$(HTTPD_INC) $(APR_INC) -Isrc

# The lists come from the folders: src/ is the engine (no httpd headers;
# the module, the CLI, unit tests and fuzzers link it), src/httpd/ the glue
# (module only), tools/ the CLI. jws_sign is the engine's signing half,
# linked into the CLI and the tests, never into the module.
SIGNING   := jws_sign
ENGINE    := $(filter-out $(SIGNING),$(sort $(basename $(notdir $(wildcard src/*.c)))))
HTTPD_GLUE:= $(sort $(basename $(notdir $(wildcard src/httpd/*.c))))
ENGINE_O  := $(ENGINE:%=$(BUILD)/obj/%.o)
SIGNING_O := $(SIGNING:%=$(BUILD)/obj/%.o)
GLUE_O    := $(HTTPD_GLUE:%=$(BUILD)/obj/httpd/%.o)
MODULE_O  := $(BUILD)/obj/mod_mcp_auth.o $(ENGINE_O) $(GLUE_O)
CLI_O     := $(BUILD)/obj/tools/mcp_auth_token.o $(SIGNING_O) $(ENGINE_O)
UNIT_SRC  := $(wildcard test/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:test/unit/%.c=$(BUILD)/unit/%)

.PHONY: all module cli unit integration check-fast test deps build-deps demo demo-stop install clean format

all: module cli
module: $(BUILD)/mod_mcp_auth.so
cli: $(BUILD)/mcp-auth-token

# The engine sees only src/; the glue and the module also see src/httpd/.
$(BUILD)/obj/%.o: src/%.c src/*.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/obj/httpd/%.o: src/httpd/%.c src/*.h src/httpd/*.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Isrc/httpd -c -o $@ $<

$(BUILD)/obj/mod_mcp_auth.o: mod_mcp_auth.c src/*.h src/httpd/*.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Isrc/httpd -c -o $@ $<

$(BUILD)/obj/tools/%.o: tools/%.c src/*.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/mod_mcp_auth.so: $(MODULE_O)
	$(CC) -shared $(SAN) $(LDFLAGS) -o $@ $(MODULE_O) $(LIBS)

$(BUILD)/mcp-auth-token: $(CLI_O)
	$(CC) $(SAN) $(LDFLAGS) -o $@ $(CLI_O) $(APR_LIBS) $(LIBS)

$(BUILD)/mcp-demo-server: demo/mcp_server.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARN) $(CFLAGS) -o $@ $< -ljansson

$(BUILD)/unit/%: test/unit/%.c test/unit/*.h $(ENGINE_O) $(SIGNING_O)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(TEST_WARN) -DVECTOR_DIR='"$(CURDIR)/test/unit/vectors"' -o $@ $< $(ENGINE_O) $(SIGNING_O) \
	  $(APR_LIBS) $(LIBS) -lcmocka

# ---- dependencies --------------------------------------------------------
BUILD_PKGS := apache2 apache2-dev libssl-dev libjansson-dev libcurl4-openssl-dev pkg-config
TEST_PKGS  := $(BUILD_PKGS) libcmocka-dev python3-pytest python3-jwt python3-cryptography python3-requests \
              curl openssl golang-go nodejs redis-server memcached python3-h2

# build-deps: what the module, the CLI and the demo need. deps: all the
# tests need too -- the Debian packages (apt-get as root) and the Node peers
# of test/package-lock.json (npm ci, again when the lock file changes).
build-deps:
	@sh test/install-deps.sh $(BUILD_PKGS)

deps:
	@sh test/install-deps.sh $(TEST_PKGS)
	@[ test/node_modules/.package-lock.json -nt test/package-lock.json ] || \
	  { echo "npm ci in test/"; cd test && npm ci --no-audit --no-fund; }

# ---- tests ---------------------------------------------------------------
unit: $(UNIT_BIN)
	@sh test/run-unit.sh $(UNIT_BIN)

integration: all
	$(PYTHON) -m pytest -q -p no:cacheprovider test/integration

# The edit-test loop: unit tests, then the integration tests that are neither
# slow nor need Node.js (markers in test/integration/pytest.ini).
# Each command's own exit status fails the target (no pipes).
check-fast: all $(UNIT_BIN)
	@sh test/run-unit.sh $(UNIT_BIN)
	$(PYTHON) -m pytest -q -p no:cacheprovider -m "not slow and not node" test/integration

test: deps
	@$(MAKE) -f apxs.mk --no-print-directory all $(UNIT_BIN)
	@bash test/run-all.sh "$(PYTHON)" $(UNIT_BIN)

# ---- demo ----------------------------------------------------------------
demo: build-deps
	@$(MAKE) -f apxs.mk --no-print-directory all $(BUILD)/mcp-demo-server
	@sh conf/demo.sh start

demo-stop:
	@sh conf/demo.sh stop

# ---- install -------------------------------------------------------------
install: module
	$(APXS) -i -S LIBEXECDIR="$(shell $(APXS) -q LIBEXECDIR)" -n mcp_auth $(BUILD)/mod_mcp_auth.so
	@if [ -d /etc/apache2/mods-available ]; then \
	  install -m 644 conf/mcp_auth.load /etc/apache2/mods-available/mcp_auth.load; \
	  echo "installed /etc/apache2/mods-available/mcp_auth.load (enable with: a2enmod mcp_auth)"; fi
	install -m 755 $(BUILD)/mcp-auth-token /usr/local/bin/mcp-auth-token
	install -D -m 644 doc/mcp-auth-token.1 /usr/local/share/man/man1/mcp-auth-token.1

format: lint-deps
	$(CLANG_FORMAT) -i $(FORMAT_SRC)

clean:
	rm -rf $(BUILD)

# ==== security: fuzzing, sanitizers, valgrind =============================
# One block, appended; nothing above depends on it. README "Security".
#
#   make -f apxs.mk fuzz [FUZZ_SECONDS=30]  build the libFuzzer targets (test/fuzz) and run each
#   make -f apxs.mk asan                    module, CLI, unit tests with ASan + UBSan in build/asan
#   make -f apxs.mk test-asan               unit + integration tests against the ASan build
#   make -f apxs.mk valgrind                unit tests and CLI round trips under valgrind
#
# Each installs what it needs (clang, its sanitizer runtimes, valgrind) as root.

SEC_LLVM      ?= 14
CLANG         ?= clang-$(SEC_LLVM)
SEC_PKGS      := clang-$(SEC_LLVM) libclang-rt-$(SEC_LLVM)-dev llvm-$(SEC_LLVM) valgrind
# Symbolized sanitizer reports (llvm-$(SEC_LLVM) puts no plain llvm-symbolizer in PATH).
SEC_ENV       := ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-$(SEC_LLVM)/bin/llvm-symbolizer
# stddef.h first: APR_OFFSETOF (behind APR_BRIGADE_SENTINEL, APR_RING_*)
# is then offsetof, not APR's NULL-pointer arithmetic, which clang rejects
# under -Werror and UBSan reports at run time. Two warnings clang adds over
# gcc (mod_mcp_auth.c, tools/mcp_auth_token.c) stay visible but do not fail.
CLANG_WARN    := -include stddef.h -Wno-error=missing-field-initializers -Wno-error=sometimes-uninitialized

FUZZ_SECONDS  ?= 30
FUZZ_BUILD    := $(BUILD)/fuzz
FUZZ_TARGETS  := jws jwks claims verify introspect jsonrpc bearer b64url claims_path headers verdict mcp_name remote
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# fuzz_pool.h turns every pool allocation of the engine into its own malloc
# so ASan checks its bounds (pool blocks would hide overruns).
FUZZ_CFLAGS    = -std=gnu11 -D_REENTRANT -D_GNU_SOURCE $(WARN) $(CLANG_WARN) -O1 -g $(FUZZ_SAN) \
                 -include test/fuzz/fuzz_pool.h $(APR_INC) -Isrc -Itest/fuzz
FUZZ_OBJ      := $(ENGINE:%=$(FUZZ_BUILD)/obj/%.o) $(SIGNING:%=$(FUZZ_BUILD)/obj/%.o) $(FUZZ_BUILD)/obj/fuzz_pool.o
FUZZ_BIN      := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)

ASAN_BUILD    := $(BUILD)/asan
ASAN_SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer
ASAN_UNIT     := $(UNIT_SRC:test/unit/%.c=$(ASAN_BUILD)/unit/%)
# The dynamic ASan runtime of the compiler that built build/asan, preloaded
# into httpd by test/asan-apache2.sh (the module alone cannot bring it).
ASAN_RUNTIME   = $(shell $(CLANG) -print-file-name=libclang_rt.asan-$(shell uname -m).so)

.PHONY: sec-deps fuzz fuzz-build asan test-asan valgrind perf-guard

sec-deps:
	@sh test/install-deps.sh $(TEST_PKGS) $(SEC_PKGS)

$(FUZZ_BUILD)/obj/fuzz_pool.o: test/fuzz/fuzz_pool.c test/fuzz/fuzz_pool.h
	@mkdir -p $(dir $@)
	$(CLANG) -std=gnu11 $(WARN) $(CLANG_WARN) -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link $(APR_INC) -c -o $@ $<

$(FUZZ_BUILD)/obj/%.o: src/%.c src/*.h test/fuzz/fuzz_pool.h
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: test/fuzz/fuzz_%.c test/fuzz/*.h $(FUZZ_OBJ)
	$(CLANG) $(FUZZ_CFLAGS) $(TEST_WARN) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) $(APR_LIBS) $(LIBS)

fuzz-build: $(FUZZ_BIN)
# Objects made only for pattern rules would be deleted as intermediates.
.SECONDARY: $(FUZZ_OBJ)

fuzz: sec-deps
	@$(call SEC_FLAGS_CHECK,$(FUZZ_BUILD),$(CLANG) $(FUZZ_CFLAGS))
	@$(MAKE) -f apxs.mk --no-print-directory fuzz-build
	@$(SEC_ENV) sh test/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_BUILD) $(FUZZ_TARGETS)

# make does not see flag changes: a build dir made with other flags starts over.
SEC_FLAGS_CHECK = mkdir -p $(1) && echo '$(2)' | cmp -s - $(1)/.flags || \
                  { rm -rf $(1) && mkdir -p $(1) && echo '$(2)' > $(1)/.flags; }

asan: sec-deps
	@$(call SEC_FLAGS_CHECK,$(ASAN_BUILD),$(CLANG) $(ASAN_SAN) $(CLANG_WARN))
	@$(MAKE) -f apxs.mk --no-print-directory BUILD=$(ASAN_BUILD) CC=$(CLANG) SAN="$(ASAN_SAN)" \
	  CFLAGS="-O1 -g $(CLANG_WARN)" all $(ASAN_UNIT)

test-asan: asan
	@$(SEC_ENV) sh test/run-asan.sh "$(PYTHON)" "$(ASAN_BUILD)" "$(ASAN_RUNTIME)" $(ASAN_UNIT)

valgrind: sec-deps
	@$(MAKE) -f apxs.mk --no-print-directory all $(UNIT_BIN)
	@sh test/run-valgrind.sh "$(BUILD)/mcp-auth-token" $(UNIT_BIN)

# Callgrind Ir per request of one repeated token above no auth, against the
# committed budget in test/perf-budget (test/perf-guard.sh; about 10 s).
perf-guard: all
	@sh test/install-deps.sh apache2 valgrind
	@bash test/perf-guard.sh

# ==== lint ================================================================
#   make -f apxs.mk lint    test/spdx.py check, clang-format --dry-run -Werror, cppcheck --enable=warning,
#                           clang-tidy (.clang-tidy says which checks and why); about 4 min on 2 cores
#   make -f apxs.mk spdx    adds the SPDX line where it is missing (test/spdx.py fix; idempotent)
#   make -f apxs.mk format  clang-format -i (.clang-format) over the same C files lint checks
# lint and format install their tools (apt-get, as root) -- the LLVM
# version of the security block, so a formatting never depends on the host.
LINT_PKGS    := clang-format-$(SEC_LLVM) clang-tidy-$(SEC_LLVM) cppcheck
CLANG_FORMAT ?= clang-format-$(SEC_LLVM)
CLANG_TIDY   ?= clang-tidy-$(SEC_LLVM)
CPPCHECK     ?= cppcheck
FORMAT_SRC   := $(wildcard mod_mcp_auth.c src/*.[ch] src/httpd/*.[ch] tools/*.c test/unit/*.[ch] test/fuzz/*.[ch] \
                demo/*.c)
# cppcheck and clang-tidy read the module, the engine and the CLI (with
# stddef.h first, as CLANG_WARN explains).
LINT_SRC     := $(wildcard mod_mcp_auth.c src/*.c src/httpd/*.c tools/*.c)
TIDY_FLAGS    = -std=gnu11 -D_REENTRANT -D_GNU_SOURCE -include stddef.h -I$(HTTPD_INC) $(APR_INC) -Isrc -Isrc/httpd

.PHONY: lint lint-deps lint-run spdx

lint-deps:
	@sh test/install-deps.sh $(LINT_PKGS) $(BUILD_PKGS)

# A second make: the include paths (apxs, apr-1-config) exist only once
# lint-deps has installed the build packages on a fresh machine.
lint: lint-deps
	@$(MAKE) -f apxs.mk --no-print-directory lint-run

lint-run:
	@sh test/lint.sh "$(PYTHON)" "$(CLANG_FORMAT)" "$(CPPCHECK)" "$(CLANG_TIDY)" "$(FORMAT_SRC)" "$(LINT_SRC)" \
	  "$(TIDY_FLAGS)"

spdx:
	@$(PYTHON) test/spdx.py fix

# ==== Debian package ======================================================
#   make -f apxs.mk deb        libapache2-mod-mcp-auth_<version>_<arch>.deb (+ .changes, .buildinfo, -dbgsym)
#                              in build/deb/, built by dpkg-buildpackage from debian/ (README "Installing the package")
#   make -f apxs.mk deb-check  deb, then lintian, install, a2enmod and 401/200 from an instance with the
#                              Debian config tree (test/deb-check.sh); purges the package at the end
# dpkg-buildpackage writes next to the source tree, so it runs in a copy of
# the tree under build/deb/src/: nothing is written outside the repository.
DEB_PKGS    := dpkg-dev debhelper lintian curl $(BUILD_PKGS) libapr1-dev libaprutil1-dev libcmocka-dev
DEB_OUT     := $(BUILD)/deb
DEB_VERSION  = $(shell dpkg-parsechangelog -l debian/changelog -S Version)
DEB_SRC      = $(DEB_OUT)/src/libapache2-mod-mcp-auth-$(DEB_VERSION)

.PHONY: deb deb-deps deb-check

deb-deps:
	@sh test/install-deps.sh $(DEB_PKGS)

deb: deb-deps
	rm -rf $(DEB_OUT) && mkdir -p $(DEB_SRC)
	tar -c --exclude=./build --exclude=./.git --exclude=./test/node_modules --exclude=__pycache__ . | tar -x -C $(DEB_SRC)
	cd $(DEB_SRC) && dpkg-buildpackage -us -uc -b
	mv $(DEB_OUT)/src/*_$(DEB_VERSION)_* $(DEB_OUT)/
	rm -rf $(DEB_OUT)/src
	@ls -1 $(DEB_OUT)

# The Debian conf for mods-available: conf/mcp_auth.conf with its example
# <Location /mcp> commented out, so that enabling the module protects
# nothing until the administrator says what (test_packaging.py checks it).
$(BUILD)/debian/mcp_auth.conf: conf/mcp_auth.conf
	@mkdir -p $(dir $@)
	sed -e '/^<Location \/mcp>/,/^<\/Location>/{/^[[:space:]]*#/!{/^[[:space:]]*$$/!s/^/#/;};}' \
	    -e '/^#<Location \/mcp>/i\
# Debian: the example location below is commented out (one "#" more than\
# its own comments), so enabling the module protects nothing by itself.\
# Copy it into your virtual host, or remove one "#" per line here.' $< > $@

deb-check: deb
	@bash test/deb-check.sh $(DEB_OUT)
