"""Classify the checks of one official conformance run against conformance/expected-failures.yml.

Usage: python summarize.py LABEL RESULTS_DIR BASELINE_YML RUNNER_EXIT_CODE

Reads every RESULTS_DIR/*/checks.json written by `conformance server -o RESULTS_DIR` and applies
the baseline with the runner's own rules (src/expected-failures.ts of the conformance repo):
  - a check with status FAILURE or WARNING fails; SUCCESS passes; INFO and SKIPPED do not count;
  - a baseline entry `scenario` expects the whole scenario to fail, `scenario:check-id` one check;
  - a failing check not covered by the baseline is unexpected;
  - a baseline entry whose scenario ran and whose check(s) now pass is stale (also a failure, so
    the baseline is kept honest);
  - entries for scenarios that did not run in this suite are ignored (one baseline serves both
    the legacy-wire and the 2026-07-28 runs).
Prints one line per unexpected failure or stale entry, then
`LABEL: P passed, E expected failures (baselined), U unexpected, S stale, K skipped/info`,
and a last line `COUNTS <passed> <failed> <baselined>` for run.sh (failed = unexpected + stale).
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys


def load_baseline(path: str) -> tuple[set[str], dict[str, set[str]]]:
    """Minimal reader for the baseline's shape (`server:` then `- entry` lines, `#` comments).

    Kept dependency-free on purpose; the official runner parses the same file with a YAML parser
    and rejects anything malformed, so both must agree for a run to pass.
    """
    whole: set[str] = set()
    per_check: dict[str, set[str]] = {}
    section = None
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.split("#", 1)[0].rstrip()
            if not line.strip():
                continue
            m = re.match(r"^([A-Za-z_]+):\s*$", line)
            if m:
                section = m.group(1)
                continue
            m = re.match(r"^\s*-\s*(\S+)\s*$", line)
            if not m or section is None:
                sys.exit(f"{path}: cannot parse line: {raw.rstrip()}")
            if section != "server":
                continue
            entry = m.group(1).strip("'\"")
            if ":" in entry:
                scenario, check = entry.split(":", 1)
                per_check.setdefault(scenario, set()).add(check)
            else:
                whole.add(entry)
    return whole, per_check


def scenario_name(dirname: str) -> str:
    # server-<scenario>-<ISO timestamp with ':' and '.' replaced by '-'>
    name = re.sub(r"-\d{4}-\d{2}-\d{2}T[\d-]+Z$", "", dirname)
    return name[len("server-"):] if name.startswith("server-") else name


def main() -> None:
    label, results, baseline_path, runner_rc = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    whole, per_check = load_baseline(baseline_path)
    passed = expected = skipped = 0
    unexpected: list[str] = []
    stale: list[str] = []
    files = sorted(glob.glob(os.path.join(results, "*", "checks.json")))
    for path in files:
        scenario = scenario_name(os.path.basename(os.path.dirname(path)))
        with open(path, encoding="utf-8") as f:
            checks = json.load(f)
        failing_ids = set()
        for c in checks:
            status = c.get("status")
            if status == "SUCCESS":
                passed += 1
                continue
            if status not in ("FAILURE", "WARNING"):
                skipped += 1
                continue
            failing_ids.add(c.get("id"))
            if scenario in whole or c.get("id") in per_check.get(scenario, set()):
                expected += 1
            else:
                msg = (c.get("errorMessage") or "").replace("\n", " ")
                unexpected.append(f"{scenario}:{c.get('id')} [{status}] {msg[:400]}")
        if scenario in whole and not failing_ids:
            stale.append(scenario)
        for check in sorted(per_check.get(scenario, set())):
            statuses = {c.get("status") for c in checks if c.get("id") == check}
            if "SUCCESS" in statuses and check not in failing_ids:
                stale.append(f"{scenario}:{check}")
    if not files:
        unexpected.append(f"no checks.json under {results}: the runner produced no results (exit {runner_rc})")
    for u in unexpected:
        print(f"  UNEXPECTED {u}")
    for s in stale:
        print(f"  STALE baseline entry (now passing, remove it): {s}")
    failed = len(unexpected) + len(stale)
    # The runner applies the same baseline; disagreeing with its verdict is itself a failure.
    if failed == 0 and runner_rc != 0:
        print(f"  UNEXPECTED the conformance runner exited {runner_rc} although every failure is baselined")
        failed = 1
    print(f"{label}: {passed} passed, {expected} expected failures (baselined), "
          f"{len(unexpected)} unexpected, {len(stale)} stale, {skipped} skipped/info")
    print(f"COUNTS {passed} {failed} {expected}")


if __name__ == "__main__":
    main()
