"""Judges bf16 parity outputs over the 1e-2 tolerance by design.md's relative rule: ditrun's error may be at
most twice the reference implementation's own bf16 error on the same fixture output.
stdin: the FAIL lines of `ditrun parity --dtype bf16`; argv[1]: tools/fixture_bf16_baseline.py's output.
Exit 1 when an output breaks the rule or has no baseline."""
import re
import sys
from pathlib import Path

ref = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+)\s+(\S+)\s+reference bf16 rel_l2=(\S+)", line)
    if m:
        ref[(m[1], m[2])] = float(m[3])
bad = 0
for line in sys.stdin:
    m = re.match(r"(\S+)\s+(\S+)\s+rel_l2=(\S+)", line)
    if not m:
        continue
    key, ours = (Path(m[1]).name, m[2]), float(m[3])
    theirs = ref.get(key)
    ok = theirs is not None and ours <= 2 * theirs
    bad += not ok
    print(f"  {key[0]} {key[1]}: ours {ours:.3e}, reference bf16 "
          f"{'n/a' if theirs is None else f'{theirs:.3e}'} -> {'PASS (relative rule)' if ok else 'FAIL'}")
sys.exit(1 if bad else 0)
