# Front door: `make run` and `make test` install what is missing, build, and go.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
SPOOL ?= var/spool
DEMO_COUNT ?= 2000

.PHONY: deps build run test unit-asan bench format clean

deps:
	@scripts/install-deps

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: deps $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

run: build
	scripts/run-demo $(BUILD)/sluice $(SPOOL) $(DEMO_COUNT)

unit-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS) --target sluice_unit_tests sluice

test: build unit-asan
	scripts/run-tests $(BUILD) $(ASAN_BUILD)

bench: build
	$(BUILD)/bench_ingest

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
