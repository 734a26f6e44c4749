# Thin wrapper: installs what the project needs, then calls Bazel.
#   make demo   build, run the example graph (printing what each app did), then benchmark
#               examples/forward.lua on the bundled capture (report in bench-report.html)
#   make test   build and pass every test (what CI runs)
#   make bench  snabb basic1 100e6 and snabb bench of examples/forward.lua, median of 5 runs each
BAZEL ?= bazel
SNABB := bazel-bin/programs/snabb

.PHONY: deps build demo test bench format

deps:
	@tools/install-deps

build: deps
	$(BAZEL) build //programs:snabb

demo: build
	$(SNABB) run examples/basic.lua --duration 1 --report
	@echo
	$(SNABB) bench examples/forward.lua --pcap examples/imix-16flows.pcap --duration 2 --html bench-report.html
	@echo "HTML report: bench-report.html"

test: deps
	@tools/run-tests

bench: build
	@tools/bench-basic1 100e6
	@tools/bench-forward

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')
