# Thin wrapper around meson.  `make check` and `make bench` install missing
# Debian packages first (scripts/install-deps.sh), so each is all a user types.
BUILD ?= build
MESON_OPTS ?=

.PHONY: all deps check bench install clean

all: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) -Dwerror=true $(MESON_OPTS)

check: all
	scripts/run-tests.sh $(BUILD)

bench: all
	$(BUILD)/bench/qaio-bench-loop

install: all
	meson install -C $(BUILD)

clean:
	rm -rf $(BUILD)
