"""Compares the bytecode `snabb auditlog` lists for each trace with what `luajit -jdump` printed
for the same script: argv[1] is luajit's dump, argv[2] snabb auditlog's text.

A trace is its start (file:line, "side" for a side trace) and the bytecode lines up to the next
"---- TRACE" line. The two processes need not compile the same set of traces (LuaJIT's hot
counters are hashed by bytecode address, which differs between the two binaries and from run to
run), so each of snabb's traces must equal one of luajit's that starts at the same place, where
luajit has one; and the traces both have must include every kind of line in argv[3:] (regular
expressions: a call's depth, a built-in, a comparison's jump...). A loop or function the JIT
patched in one process (JFORL, JFUNCF...) and not in the other is alike."""
import difflib
import re
import sys


def traces(path):
    out, cur = [], None
    with open(path, encoding="latin-1") as f:  # string constants are raw bytes
        for line in f.read().split("\n"):
            m = re.match(r"---- TRACE \d+ (start|stop|abort|IR|snapshots|mcode)(.*)", line)
            if m:
                cur = None
                if m.group(1) == "start":
                    start = re.sub(r" \(app .*\)$", "", m.group(2))
                    cur = [re.sub(r"^ \d+/(\d+|stitch) ", " side ", start)]
                    out.append(cur)
            elif cur is not None and line:
                cur.append(line)
    return out


# The JIT patches the bytecode of what it compiled or blacklisted: FORL becomes JFORL (with the
# trace number) or IFORL. One process may have compiled a function or loop the other has not.
PATCHED = re.compile(r"^(\d{4} [ .]* )[JI]?(FUNCF|FUNCV|FORL|ITERL|LOOP)\b.*")


def alike(a, b):
    return len(a) == len(b) and all(
        x == y or PATCHED.sub(r"\1\2", x) == PATCHED.sub(r"\1\2", y) for x, y in zip(a, b))


luajit, snabb = traces(sys.argv[1]), traces(sys.argv[2])
both, failed = [], False
for t in snabb:
    same_start = [u for u in luajit if u[0] == t[0]]
    if not same_start:
        continue
    if any(alike(t, u) for u in same_start):
        both.append(t)
        continue
    failed = True
    print("\n".join(difflib.unified_diff(same_start[0], t, "luajit -jdump", "snabb auditlog",
                                         lineterm="")))
for kind in sys.argv[3:]:
    if not any(re.search(kind, line) for t in both for line in t[1:]):
        failed = True
        print(f"no line matching '{kind}' in the traces both list")
print(f"luajit -jdump: {len(luajit)} traces, snabb auditlog: {len(snabb)}, {len(both)} alike "
      f"({sum(len(t) - 1 for t in both)} bytecode lines)")
sys.exit(1 if failed or not both else 0)
