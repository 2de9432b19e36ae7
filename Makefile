# Front door: `make run` and `make test` install what is missing, build, and go.
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS ?= $(shell nproc)
SPOOL ?= var/spool
DEMO_COUNT ?= 2000

.PHONY: deps build run cluster test unit-asan bench fuzz soak format clean

deps:
	@scripts/install-deps

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: deps $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

run: build
	scripts/run-demo $(BUILD)/sluice $(SPOOL) $(DEMO_COUNT)

# Two `serve` and two `worker` on a throwaway PostgreSQL and Redis, until Ctrl-C.
cluster: build
	scripts/run-cluster $(BUILD)/sluice

unit-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS) --target sluice_unit_tests fuzz_targets

test: build unit-asan
	scripts/run-tests $(BUILD) $(ASAN_BUILD)

bench: build
	$(BUILD)/bench_ingest

# Coverage-guided fuzzing with libFuzzer (clang), FUZZ_SECONDS per target, from copies of the
# checked-in corpus; crashes land in $(FUZZ_BUILD)/crashes/ (then: make each one a test).
fuzz: deps
	scripts/run-fuzz $(FUZZ_BUILD) $(FUZZ_SECONDS)

# Not part of `make test`: kill -9 over and over during drains and command runs.
soak: build
	scripts/run-soak $(BUILD)/sluice

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
