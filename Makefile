# Top-level entry points. `make run` and `make test` are the two set-up
# commands of the README; both install what they need first.
BUILD_DIR ?= build
ASAN_DIR  ?= build-asan
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc)

.PHONY: all build run test test-asan bench deps clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS) -- --no-print-directory

run: build
	@$(BUILD_DIR)/vtp-recorder serve

test:
	@scripts/install-deps.sh --test
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS) -- --no-print-directory
	@scripts/check-banned.sh
	@cd $(BUILD_DIR) && ctest --output-on-failure --timeout 900
	@$(MAKE) --no-print-directory test-asan

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan:
	@cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DVTP_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_DIR) -j $(JOBS) -- --no-print-directory
	@cd $(ASAN_DIR) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure --timeout 900

bench: build
	@scripts/install-deps.sh --test
	@bench/run.sh

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)
