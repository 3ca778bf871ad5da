# duet — build, test, demo, bench and sanitizer runs.
# Everything runs against the source tree: lua/ holds the Lua modules and
# the built duet/core.so, so no install step is needed.

LUA      ?= lua5.4
CC       ?= gcc
PKGS     := lua5.4 liblua5.4-dev lua-busted lua-socket libhiredis-dev redis-server redis-tools
SAN_PKGS := valgrind
ROCK_PKGS := luarocks
LINT_PKGS := lua-check
FUZZ_PKGS := clang
CFLAGS   ?= -O2 -g
# hidden: a module exports its luaopen_ function only (spec/exports_spec.lua)
WARN     := -std=c11 -D_GNU_SOURCE -Wall -Wextra -pedantic -Wmissing-prototypes \
            -fvisibility=hidden
LUA_INC  := $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
SRCS     := $(wildcard csrc/*.c)
HDRS     := $(wildcard csrc/*.h)
MODULE   := lua/duet/core.so
# duet.redis_core: RESP (hiredis's reader) and the portable codec, a module
# of its own so that duet.core never links hiredis.
REDIS_SRCS := $(wildcard csrc/redis/*.c)
REDIS_HDRS := $(wildcard csrc/redis/*.h)
REDIS_MODULE := lua/duet/redis_core.so
# The floors some bench rows are measured against (bench/floor.c): Lua and
# pthreads only, no duet; built for make bench and for the specs that run it.
FLOOR_MODULE := build/bench/floor.so
BUSTED   := busted --lua=$(LUA) $(BUSTED_FLAGS)
export LUA_PATH  := ./lua/?.lua;./lua/?/init.lua;./spec/?.lua;;
export LUA_CPATH := ./lua/?.so;;

.PHONY: all deps deps-san install-packages test demo stress rockcheck lint sanitize asan tsan valgrind lockcheck fuzz clean

all: $(MODULE) $(REDIS_MODULE)

$(MODULE): $(SRCS) $(HDRS)
	$(CC) $(WARN) $(CFLAGS) $(LUA_INC) -fPIC -shared -pthread -o $@ $(SRCS) -lm -ldl

$(REDIS_MODULE): $(REDIS_SRCS) $(REDIS_HDRS)
	$(CC) $(WARN) $(CFLAGS) $(LUA_INC) -fPIC -shared -o $@ $(REDIS_SRCS) -lhiredis

$(FLOOR_MODULE): bench/floor.c
	mkdir -p build/bench
	$(CC) -std=c11 -Wall -Wextra -pedantic $(CFLAGS) $(LUA_INC) -fPIC -shared -pthread -o $@ bench/floor.c

# Install the system packages the project needs (apt-get as root, else
# print the command and stop).
deps:
	@$(MAKE) -s install-packages WANT="$(PKGS)"

deps-san:
	@$(MAKE) -s install-packages WANT="$(PKGS) $(SAN_PKGS)"

# `luarocks make` of our rockspec into a scratch tree, offline (.ci/rockcheck).
rockcheck: deps
	@$(MAKE) -s install-packages WANT="$(ROCK_PKGS)"
	bash .ci/rockcheck

# luacheck over the Lua sources, specs, examples and benches (.luacheckrc).
lint:
	@$(MAKE) -s install-packages WANT="$(LINT_PKGS)"
	luacheck --no-color -q lua/ spec/ examples/ bench/

install-packages:
	@missing=""; for p in $(WANT); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' \
	    || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  else \
	    echo "missing packages; run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

# Every busted run gets a private redis-server (spec/redis_server.sh: a
# loopback port, its own temporary directory, appendonly yes), stopped
# afterwards whatever busted's exit code, which is kept. DUET_REDIS_URL
# tells the specs where it is.
WITH_REDIS := sh spec/redis_server.sh run

test: deps all $(FLOOR_MODULE)
	$(WITH_REDIS) $(BUSTED)

stress: deps all $(FLOOR_MODULE)
	$(WITH_REDIS) $(BUSTED) --tags=stress --exclude-tags=

demo: deps all
	$(LUA) examples/demo.lua

# ---------------------------------------------------------------- sanitizers
# Lua itself is not instrumented: an instrumented duet/core.so is built under
# build/<kind>/ and the sanitizer runtime is preloaded into lua5.4.
SAN_asan := -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
# initial-exec: gcc 12's TSan intercepts __tls_get_addr for a dlopened
# module's _Thread_local and, for some layouts of the DTV, clears a shadow
# range of 0x1ed5000006000 bytes and dies ("failed to allocate"); static
# TLS never goes through it
SAN_tsan := -fsanitize=thread -ftls-model=initial-exec
SAN_vg   :=
comma    := ,
# $(1): the build; $(2): more tags to leave out (",notsan": TSan holds
# signals until an intercepted call, which a busy Lua loop never makes)
SPECS_BUSTED = $(LUA) /usr/bin/busted --ignore-lua $(BUSTED_FLAGS) --cpath="./build/$(1)/?.so" \
               --exclude-tags="stress,nosan$(2)"

build/%/duet/core.so: $(SRCS) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(WARN) -O1 -g $(SAN_$*) $(LUA_INC) -fPIC -shared -pthread \
	  -o $@ $(SRCS) -lm -ldl

build/%/duet/redis_core.so: $(REDIS_SRCS) $(REDIS_HDRS)
	@mkdir -p $(@D)
	$(CC) $(WARN) -O1 -g $(SAN_$*) $(LUA_INC) -fPIC -shared \
	  -o $@ $(REDIS_SRCS) -lhiredis

# the floors' module, found before build/bench's by the busted --cpath
build/%/floor.so: bench/floor.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -Wall -Wextra -pedantic -O1 -g $(SAN_$*) $(LUA_INC) -fPIC -shared \
	  -pthread -o $@ bench/floor.c

# The private redis-server starts outside the sanitizer's preload.
asan: deps-san build/asan/duet/core.so build/asan/duet/redis_core.so build/asan/floor.so
	$(WITH_REDIS) env LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	DUET_SANITIZER=asan LUA_CPATH="./build/asan/?.so;;" \
	$(call SPECS_BUSTED,asan)

# One process per spec file: Lua raises errors with longjmp from code TSan
# does not see, so each error leaves a frame on TSan's shadow stack, which
# holds 65,536; the whole suite in one process raises more.
tsan: deps-san build/tsan/duet/core.so build/tsan/duet/redis_core.so build/tsan/floor.so
	@fail=0; for f in spec/*_spec.lua spec/regress/*_spec.lua; do \
	  $(WITH_REDIS) env LD_PRELOAD="$$($(CC) -print-file-name=libtsan.so)" \
	  TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/spec/tsan.supp" \
	  DUET_SANITIZER=tsan LUA_CPATH="./build/tsan/?.so;;" \
	  $(call SPECS_BUSTED,tsan,$(comma)notsan) $$f || fail=1; \
	done; exit $$fail

# valgrind is slow (~30x, and the queue and lock specs' spinning waits far
# more): CI runs this subset (about a minute); the object specs were run
# once under it by hand (make valgrind VALGRIND_SPECS="spec/*_spec.lua").
VALGRIND_SPECS ?= spec/transfer_spec.lua spec/threads_spec.lua spec/bench_floor_spec.lua
valgrind: deps-san build/vg/duet/core.so build/vg/duet/redis_core.so build/vg/floor.so
	DUET_SANITIZER=valgrind LUA_CPATH="./build/vg/?.so;;" \
	valgrind -q --error-exitcode=99 --leak-check=full \
	  --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	  --suppressions=$(CURDIR)/spec/valgrind.supp \
	  $(call SPECS_BUSTED,vg) $(VALGRIND_SPECS)

# lockcheck: the house rule "no Lua API call while a mutex is held", made a
# check. This build routes the module's Lua API and pthread_mutex calls
# through spec/lockcheck's wrappers (x86-64), which abort, naming the
# function, when a Lua API function is called by a thread that holds a
# mutex duet took. The whole suite runs on it.
LOCKCHECK := build/lockcheck
$(LOCKCHECK)/duet/core.so: $(SRCS) $(HDRS) spec/lockcheck/held.c spec/lockcheck/wrap.sh
	@mkdir -p $(@D)
	$(CC) $(WARN) -O1 -g $(LUA_INC) -fPIC -shared -pthread \
	  -o $(LOCKCHECK)/plain.so $(SRCS) -lm -ldl
	sh spec/lockcheck/wrap.sh $(LOCKCHECK)/plain.so $(LOCKCHECK)
	$(CC) $(WARN) -O1 -g $(LUA_INC) -fPIC -shared -pthread -o $@ $(SRCS) \
	  spec/lockcheck/held.c $(LOCKCHECK)/wrap.S @$(LOCKCHECK)/wrap.flags -lm -ldl

lockcheck: deps all $(FLOOR_MODULE) $(LOCKCHECK)/duet/core.so
	$(WITH_REDIS) env DUET_LOCKCHECK=1 LUA_CPATH="./$(LOCKCHECK)/?.so;./lua/?.so;;" \
	$(call SPECS_BUSTED,lockcheck)

sanitize: asan tsan valgrind lockcheck

# duet.decode, then duet.redis_core's decoders, under libFuzzer (clang) with
# ASan+UBSan, for FUZZ_SECONDS each.
FUZZ_SECONDS ?= 60
FUZZ_DIR := build/fuzz
$(FUZZ_DIR)/decode_fuzzer: $(SRCS) $(HDRS) spec/fuzz/decode_fuzzer.c
	@$(MAKE) -s install-packages WANT="$(PKGS) $(FUZZ_PKGS)"
	@mkdir -p $(@D)
	clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
	  $(LUA_INC) -o $@ spec/fuzz/decode_fuzzer.c $(SRCS) \
	  -llua5.4 -pthread -lm -ldl

# duet.redis_core's unpack and RESP reader, the bytes that come from Redis.
$(FUZZ_DIR)/portable_fuzzer: $(REDIS_SRCS) $(REDIS_HDRS) spec/fuzz/portable_fuzzer.c
	@$(MAKE) -s install-packages WANT="$(PKGS) $(FUZZ_PKGS)"
	@mkdir -p $(@D)
	clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
	  $(LUA_INC) -o $@ spec/fuzz/portable_fuzzer.c $(REDIS_SRCS) \
	  -llua5.4 -lhiredis -lm -ldl

fuzz: all $(FUZZ_DIR)/decode_fuzzer $(FUZZ_DIR)/portable_fuzzer
	@mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/portable_corpus
	$(LUA) spec/fuzz/corpus.lua $(FUZZ_DIR)/corpus
	$(FUZZ_DIR)/decode_fuzzer -max_total_time=$(FUZZ_SECONDS) \
	  -max_len=4096 $(FUZZ_DIR)/corpus
	$(LUA) spec/fuzz/portable_corpus.lua $(FUZZ_DIR)/portable_corpus
	$(FUZZ_DIR)/portable_fuzzer -max_total_time=$(FUZZ_SECONDS) \
	  -max_len=4096 $(FUZZ_DIR)/portable_corpus

clean:
	rm -f $(MODULE) $(REDIS_MODULE)
	rm -rf build

# ---------------------------------------------------------------- bench
# duet beside its Python peers, one table (bench/run.lua; the full table
# goes to bench/RESULTS.md). QUICK=1: smaller sizes, one run, about 30 s,
# for specs and CI; its figures are not for comparison.
.PHONY: bench
bench: all $(FLOOR_MODULE)
	$(LUA) bench/run.lua $(if $(QUICK),--quick)

# Lua Lanes for bench's Lanes column (optional: it has no Debian package).
# LANES_SRC is a checkout of github.com/LuaLanes/lanes at a v3.16 tag: its
# C sources (Lanes 4 is C++20 and needs <format>, which g++ 12 lacks).
# Installed where lua5.4 looks by default, under PEER_PREFIX.
PEER_PREFIX ?= /usr/local
.PHONY: bench-peer-lanes
bench-peer-lanes:
	@test -f "$(LANES_SRC)/src/lanes.c" || { echo "usage: make bench-peer-lanes LANES_SRC=<a LuaLanes/lanes checkout at v3.16.x>"; exit 1; }
	mkdir -p build
	$(CC) -O2 -fPIC -shared $(LUA_INC) -o build/lanes_core.so $(LANES_SRC)/src/*.c -pthread
	install -D -m 644 $(LANES_SRC)/src/lanes.lua $(PEER_PREFIX)/share/lua/5.4/lanes.lua
	install -D -m 755 build/lanes_core.so $(PEER_PREFIX)/lib/lua/5.4/lanes/core.so

# Instructions per operation on single-threaded hot paths (callgrind; each
# op run n and 2n times, the difference over n): bench/instr.lua.
.PHONY: bench-instr
bench-instr: all $(FLOOR_MODULE)
	$(LUA) bench/instr.lua $(INSTR_N)
