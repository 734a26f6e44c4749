# Thin wrapper: installs what the project needs, then calls Bazel.
#   make demo   build and run the example graph, printing what each app did
#   make test   build and pass every test (what CI runs)
#   make bench  snabb basic1 100e6, median of 5 runs
BAZEL ?= bazel
SNABB := bazel-bin/programs/snabb

.PHONY: deps build demo test bench format

deps:
	@tools/install-deps

build: deps
	$(BAZEL) build //programs:snabb

demo: build
	$(SNABB) run examples/basic.lua --duration 1 --report

test: deps
	@tools/run-tests

bench: build
	@tools/bench-basic1 100e6

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')
