"""Instructions per call by function from perf/profile.sh's callgrind files: (Ir(3N) - Ir(N)) / 2N.

  python3 perf/cgdiff.py per TAG N [K] [incl]      the K costliest functions of one run
  python3 perf/cgdiff.py diff A B N [K] [incl]     B - A per function, largest changes first

`incl` counts callees too (inclusive); the default is each function's own instructions. Function
names are read from `callgrind_annotate` (the binary's path is dropped so two builds compare).
"""
import collections
import re
import subprocess
import sys

OUT = "perf/out/profile"


def load(path, inclusive):
    args = ["callgrind_annotate", "--threshold=100", "--tree=none", "--auto=no"]
    if inclusive:
        args.append("--inclusive=yes")
    text = subprocess.run(args + [path], capture_output=True, text=True, check=True).stdout
    cost = collections.Counter()
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)", line)
        if m:
            name = re.sub(r" \[[^\]]*\]$", "", m.group(2).strip())
            cost[name] += int(m.group(1).replace(",", ""))
    return cost


def per_call(tag, n, inclusive):
    a = load(f"{OUT}/{tag}-{n}.out", inclusive)
    b = load(f"{OUT}/{tag}-{3 * n}.out", inclusive)
    return {f: (b[f] - a[f]) / (2 * n) for f in set(a) | set(b)}


def main(argv):
    inclusive = argv[-1] == "incl"
    if inclusive:
        argv = argv[:-1]
    if len(argv) >= 3 and argv[0] == "per":
        tag, n = argv[1], int(argv[2])
        k = int(argv[3]) if len(argv) > 3 else 40
        rows = per_call(tag, n, inclusive)
        for f, v in sorted(rows.items(), key=lambda x: -abs(x[1]))[:k]:
            print(f"{v:10.1f}  {f[:150]}")
    elif len(argv) >= 4 and argv[0] == "diff":
        a, b, n = argv[1], argv[2], int(argv[3])
        k = int(argv[4]) if len(argv) > 4 else 40
        pa, pb = per_call(a, n, inclusive), per_call(b, n, inclusive)
        rows = {f: pb.get(f, 0) - pa.get(f, 0) for f in set(pa) | set(pb)}
        print(f"{'B - A':>10} {'A':>9} {'B':>9}  function")
        for f, v in sorted(rows.items(), key=lambda x: -abs(x[1]))[:k]:
            print(f"{v:10.1f} {pa.get(f, 0):9.1f} {pb.get(f, 0):9.1f}  {f[:140]}")
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
