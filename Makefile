# SPDX-License-Identifier: MIT
# choreo: plain GNU Makefile.  make | make test | make demo | make bench
# Each user-facing target first installs the Debian packages it needs.

CC       ?= gcc
FUZZ_CC  ?= clang
PKGS     := libknot libzscanner libnftnl libmnl libnetfilter_log libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -D_GNU_SOURCE $(WARN) -Isrc $(PKG_CFLAGS) -MMD -MP
LDLIBS   += $(PKG_LIBS) -pthread
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

SRC      := $(wildcard src/*.c)
LIB_SRC  := $(filter-out src/choreod.c,$(SRC))
OBJ      := $(SRC:src/%.c=build/obj/%.o)
LIB_OBJ  := $(LIB_SRC:src/%.c=build/obj/%.o)
ASAN_OBJ := $(LIB_SRC:src/%.c=build/asan/%.o)

UNIT     := $(patsubst tests/unit/%.c,build/asan/%,$(wildcard tests/unit/test_*.c))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS  := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))
REPLAYS  := $(patsubst tests/fuzz/fuzz_%.c,build/asan/replay_%,$(FUZZ_SRC))
TOOLS    := build/choreoctl build/choreo-load

.PHONY: all build deps test-deps check-build test demo bench bench-seed bench-scale fuzz clean \
	bench-distributed bench-claims bench-relay bench-dist-seed bench-dist-scale test-distributed test-long \
	property test-kernels bench-flood
# User-facing targets install their packages first, then build in a second
# make: pkg-config above is only right once the -dev packages are there.
all: deps
	@$(MAKE) --no-print-directory build

build: build/choreod $(TOOLS)

deps:
	@scripts/install-deps.sh build

ifeq ($(PKG_LIBS),)
build/choreod build/choreoctl $(OBJ) $(ASAN_OBJ): pkg-config-check
.PHONY: pkg-config-check
pkg-config-check:
	@echo "pkg-config cannot find $(PKGS): run 'make' (it installs them) or scripts/install-deps.sh build" >&2; exit 1
endif

build/choreod: $(OBJ)
	$(CC) $(CFLAGS) -o $@ $(OBJ) $(LDLIBS)

# the library objects as an archive: a tool links only what it uses
build/libchoreo.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $(LIB_OBJ)

build/choreoctl: tools/choreoctl.c build/libchoreo.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< build/libchoreo.a $(LDLIBS)

# the lab's listener on an NFLOG group (tests/lab/test_nflog.sh)
build/nflog-listen: tests/lab/nflog_listen.c build/libchoreo.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< build/libchoreo.a $(LDLIBS)

# the lab's DNS flood generator and honest-client prober (tests/lab/bench-flood.sh)
build/dnsflood: tests/lab/dnsflood.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $<

build/choreo-load: tools/choreo-load.c tools/load_model.c tools/load_model.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ tools/choreo-load.c tools/load_model.c -lm

build/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

# Unit tests and fuzz-corpus replays: the library objects built with
# AddressSanitizer and UndefinedBehaviorSanitizer.
build/asan/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -O1 $(SAN) -c -o $@ $<

build/asan/test_%: tests/unit/test_%.c $(ASAN_OBJ)
	$(CC) $(CFLAGS) -O1 $(SAN) -o $@ $< $(ASAN_OBJ) $(LDLIBS) -lcmocka

# test_keyfile looks into every block freed, for secrets not zeroed first
build/asan/test_keyfile: LDLIBS += -Wl,--wrap=free

build/asan/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(ASAN_OBJ)
	$(CC) $(CFLAGS) -O1 $(SAN) -o $@ $< tests/fuzz/replay.c $(ASAN_OBJ) $(LDLIBS)

# writes the seed corpus of fuzz_frame (tests/fuzz/corpus/frame)
build/asan/gen_frame_corpus: tests/fuzz/gen_frame_corpus.c $(ASAN_OBJ)
	$(CC) $(CFLAGS) -O1 $(SAN) -o $@ $< $(ASAN_OBJ) $(LDLIBS)

# libFuzzer harnesses (clang); run with: make fuzz FUZZ_SECONDS=600
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_SRC)
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=gnu11 -D_GNU_SOURCE -g -O1 -Isrc $(PKG_CFLAGS) \
		-fsanitize=fuzzer,address,undefined -o $@ $^ $(PKG_LIBS)

FUZZ_SECONDS ?= 60
fuzz: test-deps
	@$(MAKE) --no-print-directory $(FUZZERS)
	@for f in $(FUZZERS); do n=$${f#build/fuzz/fuzz_}; \
		mkdir -p build/fuzz/corpus-$$n; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			build/fuzz/corpus-$$n tests/fuzz/corpus/$$n || exit 1; done

test-deps:
	@scripts/install-deps.sh test

# The memory gate's proof that it bites (tests/lab/test_valgrind.sh):
# choreod with a planted leak and uninitialised netlink bytes. Test-only.
build/valgrind/choreod-planted: $(OBJ) tests/valgrind/plant.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Wl,--wrap=mnl_socket_sendto -o $@ $(OBJ) tests/valgrind/plant.c $(LDLIBS)

check-build: build/choreod $(TOOLS) $(UNIT) $(REPLAYS) $(FUZZERS) build/valgrind/choreod-planted \
	build/asan/gen_frame_corpus build/nflog-listen build/dnsflood

test: test-deps
	@$(MAKE) --no-print-directory check-build
	@tests/run.sh

# Lab suites too long for make test's 15 minutes (tests/lab/long_*.sh:
# the controller attacked, 3.5 min; failover under load with keepalived,
# 2.5 min), with the same TAP count; .ci/run runs them after make test.
test-long: test-deps
	@$(MAKE) --no-print-directory build/choreod build/choreoctl
	@tests/run.sh --long

# The distributed lab's full form: 1000 clients per run (make test: 100).
test-distributed: test-deps
	@$(MAKE) --no-print-directory build/choreod build/choreoctl
	@DIST_TRIES=1000 tests/lab/test_distributed.sh

# The exposure property over many more random sequences than make test's.
PROPERTY_SEQUENCES ?= 10000000
property: test-deps
	@$(MAKE) --no-print-directory build/asan/test_exposure
	CHOREO_PROPERTY_SEQUENCES=$(PROPERTY_SEQUENCES) build/asan/test_exposure

# The probe and the gateway tests inside Debian 12's kernel (6.1) under qemu.
test-kernels:
	@scripts/install-deps.sh kernels
	@$(MAKE) --no-print-directory check-build
	@tests/kernels/run-tests.sh

demo:
	@scripts/install-deps.sh demo
	@$(MAKE) --no-print-directory build
	@tests/lab/demo.sh

bench:
	@scripts/install-deps.sh bench
	@$(MAKE) --no-print-directory build build/dnsflood
	@tests/lab/bench-dns.sh
	@tests/lab/bench-gateway.sh
	@tests/lab/bench-control.sh
	@tests/lab/bench-flood.sh

# An honest client's answer rate and latency under a spoofed-source flood
# of rotated queries (build/dnsflood), at BENCH_FLOOD_RATES from
# BENCH_FLOOD_SOURCES addresses; BENCH_FLOOD_DNS_EXTRA adds lines to
# choreod's [dns] section (e.g. rate limiting on). About 3 minutes.
bench-flood:
	@scripts/install-deps.sh bench
	@$(MAKE) --no-print-directory build build/dnsflood
	@tests/lab/bench-flood.sh

# The distributed mode measured (issue 13), three parts, each run even when
# an earlier one failed (exit 1 if any did); about 30 min with the defaults:
#  answer  bench-distributed.sh: answer latency and rate, a DNS node and two
#          gateways against standalone choreod (BENCH_SECONDS, BENCH_RATE,
#          BENCH_CLIENTS, BENCH_OUTSTANDING: dnsperf's)
#  seed    bench-dist-seed.sh: the 2014 matrix, 27 runs (SECONDS_PER_RUN,
#          DIST_SEED_CLIENTS, DIST_SEED_LATENCIES, DIST_SEED_MIXES,
#          DIST_SEED_MAX_OPEN)
#  scale   bench-dist-scale.sh: 10 000 clients through two gateways, then
#          standalone choreod (DIST_SCALE_SECONDS, DIST_SCALE_CLIENTS,
#          DIST_SCALE_LATENCY, DIST_SCALE_CLOSE, DIST_SCALE_STANDALONE)
# BENCH_DIST_PARTS="answer seed scale" selects parts.
bench-distributed:
	@scripts/install-deps.sh bench
	@scripts/install-deps.sh demo
	@$(MAKE) --no-print-directory build
	@rc=0; for p in $${BENCH_DIST_PARTS:-answer seed scale}; do \
		case $$p in \
		answer) s=bench-distributed ;; seed) s=bench-dist-seed ;; scale) s=bench-dist-scale ;; \
		*) echo "BENCH_DIST_PARTS: answer, seed, scale" >&2; exit 2 ;; \
		esac; \
		echo "== make bench-distributed: $$p (tests/lab/$$s.sh) =="; \
		tests/lab/$$s.sh || rc=1; \
	done; exit $$rc

# window_claims under load: direct askers, Unbound at ttl 0 and 5 (SECONDS_PER_RUN).
bench-claims:
	@scripts/install-deps.sh demo
	@$(MAKE) --no-print-directory build
	@tests/lab/bench-claims.sh

# the 2014 seed matrix (valid, invalid, mixed) through the distributed lab:
# bench-distributed's "seed" part alone (SECONDS_PER_RUN, DIST_SEED_*)
bench-dist-seed:
	@scripts/install-deps.sh demo
	@$(MAKE) --no-print-directory build
	@tests/lab/bench-dist-seed.sh

# bench-distributed's "scale" part alone (DIST_SCALE_*)
bench-dist-scale:
	@scripts/install-deps.sh demo
	@$(MAKE) --no-print-directory build
	@tests/lab/bench-dist-scale.sh

# a binding's relay between two gateways through the controller
bench-relay:
	@scripts/install-deps.sh demo
	@$(MAKE) --no-print-directory build
	@tests/lab/bench-relay.sh

# The 2014 evaluation's experiment (issue 4): SECONDS_PER_RUN, SCALE_SECONDS.
bench-seed:
	@scripts/install-deps.sh demo
	@$(MAKE) --no-print-directory build
	@tests/lab/bench-seed.sh

bench-scale:
	@scripts/install-deps.sh demo
	@$(MAKE) --no-print-directory build
	@tests/lab/bench-scale.sh

clean:
	rm -rf build

-include $(wildcard build/obj/*.d build/asan/*.d)

# keep the sanitizer objects between runs
.SECONDARY:
