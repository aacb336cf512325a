"""The "everything" leg's verdict: the official suite run against the reference server
@modelcontextprotocol/server-everything directly and through the gateway, on both wires; no check
may be worse through the gateway.

Usage: python compare.py OUT_DIR BASELINE_YML

OUT_DIR holds, for each wire W in (legacy, 2026-07-28), `everything-direct-W` and
`everything-gateway-W` (results of `conformance server -o ...`). The reference server is not the
suite's test server, so many checks fail directly (tools the suite expects are missing; on the
2026-07-28 wire the server speaks only the 2025 revisions): this leg asks only that the gateway
takes nothing away. A check (scenario, check id) is WORSE when every run of it passed directly
(SUCCESS) and some run of it through the gateway did not, or it did not run through the gateway.
Checks that pass through the gateway and not directly are counted as better (the gateway bridges
the 2026-07-28 wire to the 2025 server).

BASELINE_YML (everything/expected-worse.yml) explains known worse checks, in the fixture leg's
format (`mismatches:` entries with wire, check, kind, reason; kinds gap, bug, design). An entry
whose check is no longer worse is stale and fails the run.

Prints one line per problem and one summary line per wire; the last line is
`COUNTS <not worse> <failed> <baselined>` for run.sh (failed = unexplained worse + stale).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixture"))

from compare import WIRES, load_baseline, load_run  # noqa: E402  (the fixture leg's readers)


def passed(statuses: list[str] | None) -> bool:
    return bool(statuses) and all(s == "SUCCESS" for s in statuses)


def main() -> None:
    out, baseline_path = sys.argv[1], sys.argv[2]
    entries = load_baseline(baseline_path)
    by_key = {(e["wire"], e["check"]): e for e in entries}
    used: set = set()
    total_ok = total_failed = total_baselined = 0
    for wire in WIRES:
        direct, _, p1 = load_run(os.path.join(out, f"everything-direct-{wire}"))
        gateway, messages, p2 = load_run(os.path.join(out, f"everything-gateway-{wire}"))
        for p in p1 + p2:
            print(f"FAIL everything {wire}: {p}")
            total_failed += 1
        ok = worse = baselined = better = 0
        for key in list(direct) + [k for k in gateway if k not in direct]:
            d, g = direct.get(key), gateway.get(key)
            check = f"{key[0]}:{key[1]}"
            if passed(d) and not passed(g):
                entry = by_key.get((wire, check))
                if entry:
                    used.add((wire, check))
                    baselined += 1
                    continue
                worse += 1
                why = messages.get(key, "did not run through the gateway" if g is None else ", ".join(g))
                print(f"FAIL everything {wire}: {check} passes directly, not through the gateway: {why}")
            else:
                ok += 1
                if passed(g) and not passed(d):
                    better += 1
        total_ok += ok
        total_failed += worse
        total_baselined += baselined
        print(f"everything {wire}: {ok} checks not worse through the gateway ({better} better), "
              f"{baselined} known (baselined), {worse} worse")
    for e in entries:
        if (e["wire"], e["check"]) not in used:
            print(f"FAIL everything {e['wire']}: stale baseline entry {e['check']} "
                  f"({baseline_path}:{e['line']}): no longer worse; remove it")
            total_failed += 1
    print(f"COUNTS {total_ok} {total_failed} {total_baselined}")


if __name__ == "__main__":
    main()
