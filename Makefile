# Thin wrapper: installs what the project needs, then calls Bazel.
#   make demo   build, run the example graph (printing what each app did), then benchmark
#               examples/forward.lua on the bundled capture (report in bench-report.html)
#   make test   luacheck over all Lua, build and pass every test (what CI runs)
#   make check-sanitize  every test again under AddressSanitizer, then UndefinedBehaviorSanitizer
#   make fuzz   each fuzz target for FUZZ_SECONDS (default 600) with libFuzzer (tools/fuzz)
#   make bench  snabb basic1 100e6 and snabb bench of examples/forward.lua, median of 5 runs each
BAZEL ?= bazel
SNABB := bazel-bin/programs/snabb

.PHONY: deps build demo test check-sanitize fuzz bench format

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

check-sanitize: deps
	@tools/run-tests --config=asan
	@tools/run-tests --config=ubsan

FUZZ_SECONDS ?= 600
fuzz: deps
	@tools/fuzz $(FUZZ_SECONDS)

bench: build
	@tools/bench-basic1 100e6
	@tools/bench-forward

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')
