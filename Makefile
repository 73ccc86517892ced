# Thin wrapper around meson.  `make check` and `make bench` install missing
# Debian packages first (scripts/install-deps.sh), so each is all a user types.
BUILD ?= build
MESON_OPTS ?=

.PHONY: all deps check check-asan check-tsan check-valgrind check-ucontext \
        bench bench-loop bench-peers install clean

all: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) -Dwerror=true $(MESON_OPTS)

check: all
	scripts/run-tests.sh $(BUILD)

# The whole suite again with the portable coroutine switch (ucontext);
# `make check` uses the default, assembly on x86-64 and aarch64.
check-ucontext: deps
	test -f build-ucontext/build.ninja || meson setup build-ucontext \
	    -Dwerror=true -Dcoroutine_backend=ucontext
	ninja -C build-ucontext
	scripts/run-tests.sh build-ucontext --no-suite model

# Sanitizer and valgrind runs, each in a build directory of its own.
# AddressSanitizer + UndefinedBehaviorSanitizer (leak detection on): every test.
check-asan: deps
	test -f build-asan/build.ninja || meson setup build-asan -Dwerror=true \
	    -Db_sanitize=address,undefined -Db_lundef=false \
	    -Dc_args=-fno-sanitize-recover=undefined
	ninja -C build-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    scripts/run-tests.sh build-asan --no-suite model

# ThreadSanitizer: the multithreaded tests (suite "mt").  Built with clang:
# gcc 12 warns that it cannot instrument atomic_thread_fence.
check-tsan: deps
	scripts/install-deps.sh clang
	test -f build-tsan/build.ninja || CC=clang meson setup build-tsan \
	    -Dwerror=true -Db_sanitize=thread -Db_lundef=false
	ninja -C build-tsan
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	    scripts/run-tests.sh build-tsan --suite mt

# valgrind memcheck: the single-threaded tests (suite "st").
VALGRIND = valgrind --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite -q \
	--suppressions=/usr/share/glib-2.0/valgrind/glib.supp
check-valgrind: deps
	scripts/install-deps.sh valgrind
	test -f build-valgrind/build.ninja || meson setup build-valgrind \
	    -Dwerror=true -Dbuildtype=debug
	ninja -C build-valgrind
	scripts/run-tests.sh build-valgrind --suite st --timeout-multiplier 10 \
	    --wrapper "$(VALGRIND)"

# qaio-bench with no arguments: a temporary 1 GiB file, 4 KiB random reads
# at depth 32 for 3 s on every I/O engine this machine supports, one table.
bench: all
	$(BUILD)/tools/qaio-bench

# The event-loop benchmark, short version (qaio against the peers built in).
bench-loop: all
	$(BUILD)/bench/qaio-bench-loop

# The whole benchmark suite: install the peers (libraries and tools),
# reconfigure (--wipe: meson caches a missing header), rebuild, run every
# benchmark, keep the results in bench/results/ and regenerate
# docs/PERFORMANCE.md from them (bench/run-all.sh).
bench-peers: deps $(BUILD)/build.ninja
	scripts/install-deps.sh libuv1-dev libev-dev libevent-dev fio qemu-utils
	meson setup --wipe $(BUILD)
	ninja -C $(BUILD)
	bench/run-all.sh $(BUILD)

install: all
	meson install -C $(BUILD)

clean:
	rm -rf $(BUILD)
