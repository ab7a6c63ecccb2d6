#!/usr/bin/env python3
"""The failure reports in the output of `cargo test`, printed again where
only the tail of a log survives (a CI log keeps no files).

    cargo_failures.py LOG...   print each failed test's report in LOG

Used by scripts/test.sh (the unit and integration tests) and by
scripts/kernel_table.py (the kernel matrix's cells).
"""
import re
import sys
from pathlib import Path

REPORT = re.compile(r"---- .* stdout ----$")


def reports(log: Path, per_test: int = 60, tail: int = 40) -> str:
    """Each failed test's report in `log` (from its `---- NAME stdout ----`
    line to the list of failures cargo prints after the reports), at most
    `per_test` lines each; the last `tail` lines when there is none (a test
    binary killed, or one that did not build)."""
    lines = log.read_text(errors="replace").splitlines()
    out, kept, cut = [], 0, 0
    inside = False
    for line in lines:
        if REPORT.match(line):
            if cut:
                out.append(f"[... {cut} more lines in {log}]")
            inside, kept, cut = True, 0, 0
        elif inside and line == "failures:":
            inside = False
        if not inside:
            continue
        if kept < per_test:
            out.append(line)
            kept += 1
        else:
            cut += 1
    if cut:
        out.append(f"[... {cut} more lines in {log}]")
    if not out:
        out = lines[-tail:]
    return "\n".join(out)


def main(argv):
    for log in argv:
        print(reports(Path(log)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
