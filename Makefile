# duet — build, test, demo, bench and sanitizer runs.
# Everything runs against the source tree: lua/ holds the Lua modules and
# the built duet/core.so, so no install step is needed.

LUA      ?= lua5.4
CC       ?= gcc
PKGS     := lua5.4 liblua5.4-dev lua-busted lua-socket
CFLAGS   ?= -O2 -g
WARN     := -std=c11 -D_GNU_SOURCE -Wall -Wextra -pedantic -Wmissing-prototypes
LUA_INC  := $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
SRCS     := $(wildcard csrc/*.c)
HDRS     := $(wildcard csrc/*.h)
MODULE   := lua/duet/core.so
BUSTED   := busted --lua=$(LUA)
export LUA_PATH  := ./lua/?.lua;./lua/?/init.lua;./spec/?.lua;;
export LUA_CPATH := ./lua/?.so;;

.PHONY: all deps test demo bench stress sanitize asan tsan valgrind fuzz install clean

all: $(MODULE)

$(MODULE): $(SRCS) $(HDRS)
	$(CC) $(WARN) $(CFLAGS) $(LUA_INC) -fPIC -shared -pthread -o $@ $(SRCS) -lm -ldl

# Install the system packages the project needs (apt-get as root, else
# print the command and stop).
deps:
	@missing=""; for p in $(PKGS); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  else \
	    echo "missing packages; run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

test: deps all
	$(BUSTED)

stress: deps all
	$(BUSTED) --tags=stress --exclude-tags=

demo: deps all
	$(LUA) examples/demo.lua

clean:
	rm -f $(MODULE)
	rm -rf build

# ---------------------------------------------------------------- bench
# duet beside its Python peers, one table (bench/run.lua; the full table
# goes to bench/RESULTS.md). QUICK=1: smaller sizes, one run, about 30 s,
# for specs and CI; its figures are not for comparison.
.PHONY: bench
bench: all
	$(LUA) bench/run.lua $(if $(QUICK),--quick)
