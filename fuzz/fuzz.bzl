"""fuzz_test: a libFuzzer-style target (LLVMFuzzerTestOneInput) as a test over a seed corpus."""

def fuzz_test(name, srcs, deps, corpus, runs, dict = None, max_len = 65536, linkopts = [], data = []):
    """A cc_test that runs the target on every seed, then on `runs` mutants (seed 1).

    In the ordinary build it links fuzz/driver.cc, a mutation driver without coverage feedback,
    so `bazel test` runs a fixed, reproducible number of inputs. With --config=fuzz it links
    libFuzzer instead: tools/fuzz runs it for as long as asked over a copy of the corpus.

    Args:
      name: the test.
      srcs: the target's sources, defining LLVMFuzzerTestOneInput.
      deps: what it fuzzes.
      corpus: seed files (labels); each is run as it is, then mutated.
      runs: mutants to run in the test, sized for about 20 s in the ordinary build.
      dict: a libFuzzer dictionary of tokens to insert (optional).
      max_len: longest input, in bytes (longer seeds are cut).
      linkopts: as usual.
      data: other files the target reads.
    """
    args = ["-runs=%d" % runs, "-seed=1", "-max_len=%d" % max_len]
    if dict:
        args.append("-dict=$(location %s)" % dict)
        data = data + [dict]

    # NAME.fuzz_args: the flags and seed files, for tools/fuzz's longer runs.
    native.genrule(
        name = name + "_fuzz_args",
        srcs = corpus + ([dict] if dict else []),
        outs = [name + ".fuzz_args"],
        cmd = "(echo -max_len=%d %s; for f in %s; do echo $$f; done) > $@" % (
            max_len,
            "-dict=$(location %s)" % dict if dict else "",
            " ".join(["$(locations %s)" % c for c in corpus]),
        ),
    )
    native.cc_test(
        name = name,
        srcs = srcs,
        args = args + ["$(locations %s)" % c for c in corpus],
        data = corpus + data,
        deps = deps + select({
            "//fuzz:libfuzzer": [],
            "//conditions:default": ["//fuzz:driver"],
        }),
        linkopts = linkopts + select({
            "//fuzz:libfuzzer": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        # Alone, after the others: a fuzz target keeps a core busy for its whole run, and the
        # tests that time the engine (profile_test's shares, bench_test's rate) need theirs.
        tags = ["exclusive"],
    )
