# dealpush: build, run, test and benchmark.
#
#   make          build everything under build/ (objects out of tree)
#   make run      install what is missing, start a private redis-server and the gateway
#                 simulator on 127.0.0.1, load the examples, run the notifier, show pushes
#   make test     the same setup, then every test; last line "N passed, M failed"
#   make asan     ASan + UBSan build (under build/asan/) running the same tests
#   make bench    the benchmarks; each ends with one "BENCH name=..." line
#   make fuzz     the libFuzzer targets, a bounded time each
#   make install  notifier, dealpushctl, man pages, systemd units and the example
#                 config under PREFIX (/usr/local) into DESTDIR
#   make deb      the Debian package from deploy/debian/ (under $(BUILD)/deb/)
#   make clean

BUILD   ?= build
CC      ?= cc
PKGS     = libevent hiredis libcjson libcurl libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

# The release, in one place: --version of both programs, the Debian changelog.
VERSION := $(shell cat VERSION)

OPT     ?= -O2
SAN     ?=
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
           -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral \
           -Iinclude -Itests/integration -I$(BUILD)/gen $(PKG_CFLAGS) $(SAN) -MMD -MP
LDFLAGS += $(SAN)
LDLIBS  += $(PKG_LIBS) -lm

RULES_SRC    := $(wildcard rules/*.c)
LIB_SRC      := $(filter-out notifier/main.c notifier/dealpushctl.c,$(wildcard notifier/*.c))
LUA_SRC      := $(wildcard notifier/lua/*.lua)
LUA_LIB      := $(wildcard notifier/lua/lib/*.lua)
GWSIM_SRC    := $(wildcard tests/gwsim/*.c)
UNIT_SRC     := $(wildcard tests/unit/test_*.c)
ITEST_SRC    := $(wildcard tests/integration/test_*.c)
ITEST_SUPPORT:= $(filter-out $(ITEST_SRC),$(wildcard tests/integration/*.c))
BENCH_SRC    := $(wildcard tests/bench/bench_*.c)
BENCH_SUPPORT:= $(filter-out $(BENCH_SRC) tests/bench/gensubs.c,$(wildcard tests/bench/*.c))
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

RULES_LIB    := $(BUILD)/librules.a
NOTIFIER_LIB := $(BUILD)/libnotifier.a
LUA_GEN      := $(BUILD)/gen/lua_scripts.c
# The console's files, embedded; the charting library is Debian's libjs-chart.js.
UI_SRC       := $(shell find notifier/ui -type f 2>/dev/null | LC_ALL=C sort)
CHARTJS      ?= /usr/share/javascript/chart.js/chart.min.js
UI_GEN       := $(BUILD)/gen/ui_files.c
BINS         := $(BUILD)/notifier $(BUILD)/dealpushctl $(BUILD)/gwsim
UNIT_BINS    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
ITEST_BINS   := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(ITEST_SRC))
BENCH_BINS   := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
# Not a benchmark: the seeded subscriber generator (`gensubs --seed S --count N`).
GENSUBS      := $(BUILD)/bench/gensubs

.PHONY: all run test asan bench fuzz clean deps deps-test install deb
# Keep every object: none is an intermediate to be deleted after linking.
.SECONDARY:
all: $(BINS) $(UNIT_BINS) $(ITEST_BINS) $(BENCH_BINS) $(GENSUBS)

# What `make run` needs; the test, bench and packaging tools come with deps-test.
deps:
	@./deploy/install-deps.sh

deps-test:
	@./deploy/install-deps.sh --test

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# Lua scripts are kept as readable files and embedded as C strings.
$(LUA_GEN): $(LUA_SRC) $(LUA_LIB) deploy/embed-lua.sh
	@mkdir -p $(dir $@)
	./deploy/embed-lua.sh $(LUA_SRC) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/lua_scripts.o: $(LUA_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(UI_GEN): $(UI_SRC) $(CHARTJS) deploy/embed-ui.sh
	@mkdir -p $(dir $@)
	./deploy/embed-ui.sh notifier/ui $(UI_SRC) vendor/chart.min.js=$(CHARTJS) \
	    > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/ui_files.o: $(UI_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/gen/version.h: VERSION
	@mkdir -p $(dir $@)
	printf '#define DEALPUSH_VERSION "%s"\n' "$(VERSION)" > $@.tmp && mv $@.tmp $@

$(call obj,notifier/main.c notifier/dealpushctl.c notifier/formats_watch.c \
    notifier/ctl_formats.c): \
    $(BUILD)/gen/version.h

$(RULES_LIB): $(call obj,$(RULES_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(NOTIFIER_LIB): $(call obj,$(LIB_SRC)) $(BUILD)/obj/gen/lua_scripts.o \
    $(BUILD)/obj/gen/ui_files.o
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/notifier: $(call obj,notifier/main.c) $(NOTIFIER_LIB) $(RULES_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/dealpushctl: $(call obj,notifier/dealpushctl.c) $(NOTIFIER_LIB) $(RULES_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/gwsim: $(call obj,$(GWSIM_SRC)) $(NOTIFIER_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(NOTIFIER_LIB) $(RULES_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CMOCKA_LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/integration/%.o $(call obj,$(ITEST_SUPPORT)) $(NOTIFIER_LIB) $(RULES_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CMOCKA_LIBS)

# The generator's unit test links the generator too.
$(BUILD)/tests/test_subgen: $(call obj,tests/bench/subgen.c)

$(GENSUBS): $(call obj,tests/bench/gensubs.c tests/bench/subgen.c)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(call obj,$(BENCH_SUPPORT) $(ITEST_SUPPORT)) $(NOTIFIER_LIB) $(RULES_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Only the three programs, on every core: the demo needs no test binary built first.
run: deps
	@$(MAKE) --no-print-directory -j$$(nproc) $(BINS)
	@./deploy/run.sh $(BUILD)

test: deps-test
	@$(MAKE) --no-print-directory all
	@./tests/run.sh $(BUILD)

# The same tests on a sanitizer build; leaks are reported by LeakSanitizer.
asan: deps-test
	@$(MAKE) --no-print-directory all BUILD=build/asan OPT=-O1 \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
	@DP_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	    UBSAN_OPTIONS=print_stacktrace=1 ./tests/run.sh build/asan

bench: deps-test
	@$(MAKE) --no-print-directory all
	@./tests/bench/run.sh $(BUILD)

FUZZ_SECONDS ?= 30
fuzz: deps-test
	@./tests/fuzz/run.sh $(FUZZ_SECONDS)

# Install: PREFIX=/usr for a system package; DESTDIR stages it. The config is
# installed only where none is (an edited one is never overwritten); the example
# always goes with the docs.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/dealpush
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR    ?= $(PREFIX)/lib/systemd/system
INSTALL    ?= install
MANPAGES   := docs/man/dealpushctl.1 docs/man/notifier.conf.5 docs/man/notifier.8
UNITS      := notifier.service notifier@.service

install: $(BUILD)/notifier $(BUILD)/dealpushctl
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/dealpush $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	$(INSTALL) -m 0755 $(BUILD)/notifier $(BUILD)/dealpushctl $(DESTDIR)$(BINDIR)/
	for m in $(MANPAGES); do \
	    $(INSTALL) -m 0644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}/ || exit 1; done
	for u in $(UNITS); do \
	    sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	        deploy/systemd/$$u.in > $(DESTDIR)$(UNITDIR)/$$u && \
	    chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; done
	$(INSTALL) -m 0644 deploy/notifier.conf.example $(DESTDIR)$(DOCDIR)/
	$(INSTALL) -d -m 0700 $(DESTDIR)$(SYSCONFDIR)/dealpush/credentials
	test -e $(DESTDIR)$(SYSCONFDIR)/dealpush/notifier.conf || \
	    $(INSTALL) -m 0644 deploy/notifier.conf.example \
	        $(DESTDIR)$(SYSCONFDIR)/dealpush/notifier.conf

# dpkg-buildpackage wants ./debian: a copy of the sources is staged with
# deploy/debian as its debian/, built there; the .deb lands in $(BUILD)/deb/.
DEB_STAGE := $(BUILD)/deb/dealpush-$(VERSION)
deb: deps-test
	@test "$$(dpkg-parsechangelog -l deploy/debian/changelog -S Version)" = "$(VERSION)" \
	    || { echo "deploy/debian/changelog is not at VERSION $(VERSION)" >&2; exit 1; }
	rm -rf $(BUILD)/deb && mkdir -p $(DEB_STAGE)
	cp -a Makefile VERSION README.md include notifier rules docs deploy $(DEB_STAGE)/
	cp -a deploy/debian $(DEB_STAGE)/debian
	cd $(DEB_STAGE) && dpkg-buildpackage -us -uc -b
	@ls $(BUILD)/deb/*.deb

clean:
	rm -rf build run

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
