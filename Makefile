# clampd — see README.md. `make` builds build/clampd; `make check` installs what is
# missing, builds, and runs every test (the README's test command; CI runs exactly this).

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= 2
FUZZ_SECONDS ?= 20

.PHONY: all deps check unit e2e conformance asan fuzz bench eval demo clean format

all:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

deps:
	@scripts/deps.sh

check: deps
	@scripts/check.sh

unit: all
	cd $(BUILD) && ctest --output-on-failure

e2e: all
	CLAMPD_BIN=$(CURDIR)/$(BUILD)/clampd npm --prefix tests/e2e test

conformance: all
	CLAMPD_BIN=$(CURDIR)/$(BUILD)/clampd tests/conformance/run.sh

asan:
	@cmake -S . -B $(ASAN_BUILD) -DCLAMPD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)

fuzz:
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCLAMPD_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(FUZZ_BUILD) -j$(JOBS)
	@scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# Recall and false-positive rate of the built-in rules on the labelled corpus (tests/corpus).
eval: all
	@XDG_CACHE_HOME=$(CURDIR)/$(BUILD)/cache node scripts/eval.mjs --clampd $(BUILD)/clampd

# The rules are compiled once into $(BUILD)/cache (as for eval) before anything is timed: a
# clampd that compiles them on its first start (~30 s) would miss the latency bench's timeout.
bench: export XDG_CACHE_HOME = $(CURDIR)/$(BUILD)/cache
bench: all
	$(BUILD)/bench_decide -r 1 -n 1 -w 0 >/dev/null
	CLAMPD_BIN=$(CURDIR)/$(BUILD)/clampd bench/run.sh
	$(BUILD)/bench_scan
	$(BUILD)/bench_decide $${BENCH_DECIDE_ROUNDS:+-r $$BENCH_DECIDE_ROUNDS} \
	    $${BENCH_DECIDE_CALLS:+-n $$BENCH_DECIDE_CALLS}
	CLAMPD_BIN=$(CURDIR)/$(BUILD)/clampd bench/gateway.sh

demo:
	@scripts/demo.sh

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'bench/*.c')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
