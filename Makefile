# Top-level entry points. `make run` and `make test` are the two set-up
# commands of the README; both install what they need first.
BUILD_DIR ?= build
ASAN_DIR  ?= build-asan
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc)

.PHONY: all build run test test-asan bench fuzz deps clean

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
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVTP_REQUIRE_TESTS=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS) -- --no-print-directory
	@scripts/check-banned.sh
	@scripts/check-includes.sh
	@cd $(BUILD_DIR) && ctest --output-on-failure --timeout 900
	@$(MAKE) --no-print-directory test-asan

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer,
# but for the suites labelled no-asan (see CMakeLists.txt: Janus and the
# browser lecture, whose server paths the sfu, latching, whip and layouts
# suites take under the sanitizers too; the multi-node suites; the PostgreSQL
# variant of suites whose C is the same on both backends), two at a time
# (the suites wait on real-time media; the composing ones hold a lock).
test-asan:
	@cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DVTP_SANITIZE=ON -DVTP_REQUIRE_TESTS=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_DIR) -j $(JOBS) -- --no-print-directory
	@cd $(ASAN_DIR) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure --timeout 900 -LE no-asan -j2

# libFuzzer on every target for FUZZ_SECONDS each (new inputs go to
# build-fuzz/found/<target>, the repo corpus is only read).
FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
fuzz:
	@scripts/install-deps.sh --fuzz
	@cmake -S . -B $(FUZZ_DIR) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DVTP_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_DIR) -j $(JOBS) -- --no-print-directory
	@for t in $(FUZZ_DIR)/fuzz_*; do case $$t in *_replay) continue;; esac; \
	  name=$$(basename $$t); corpus=$${name#fuzz_}; mkdir -p $(FUZZ_DIR)/found/$$corpus; \
	  echo "fuzzing $$name for $(FUZZ_SECONDS) s"; \
	  if ! $$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(FUZZ_DIR)/found/$$corpus \
	       tests/fuzz/corpus/$$corpus > $(FUZZ_DIR)/$$name.log 2>&1; then \
	    tail -40 $(FUZZ_DIR)/$$name.log; echo "$$name found a failure (log: $(FUZZ_DIR)/$$name.log)"; exit 1; \
	  fi; grep -E 'stat::(number_of_executed_units|new_units_added)' $(FUZZ_DIR)/$$name.log; \
	done

bench: build
	@scripts/install-deps.sh --test
	@bench/run.sh
	@BENCH_BACKEND=postgres bench/run.sh
	@bench/ingest.sh
	@bench/compose.sh
	@bench/class.sh
	@bench/cluster.sh
	@bench/download.sh
	@bench/whip.sh
	@bench/events.sh

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(FUZZ_DIR)
