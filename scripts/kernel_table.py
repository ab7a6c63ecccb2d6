#!/usr/bin/env python3
"""The kernel matrix's table, from what scripts/kernel-guest.sh wrote.

    kernel_table.py WORKDIR LABEL...          print the Markdown table
    kernel_table.py --check WORKDIR LABEL...  exit 1 if a cell failed
    kernel_table.py --failures WORKDIR LABEL... print each failed test run

WORKDIR/LABEL/out/ holds doctor.json, doctor.rc, results.tsv, release,
seconds, `boots` when the guest was booted a second time, and `done` (or
`skipped` with the reason the row was not run).
"""
import json
import re
import sys
from pathlib import Path

from cargo_failures import reports

CELLS = [
    ("http", "http"),
    ("https", "https (OpenSSL)"),
    ("http2", "http/2 + gRPC"),
    ("packets-tc", "packets: tc"),
    ("packets-xdp", "packets: xdp"),
    ("packets-socket", "packets: socket"),
    ("http-packets", "http from packets"),
    ("attribution", "process attribution"),
    ("sigkill", "SIGKILL cleanup"),
]

# How a fallback shows in a passing cell.
FALLBACK = {
    "packets-tc": "clsact",
    "attribution": "from syscalls",
}


def short_reason(err: str) -> str:
    """'... lacks the bpf_loop helper, which mainline Linux has since 5.17 ...'
    -> 'no bpf_loop (5.17)'."""
    m = re.search(r"lacks (?:the )?(.+?)(?: helper)?, which mainline Linux has since ([0-9.]+)", err)
    return f"no {m.group(1)} ({m.group(2)})" if m else err.strip()


def row(work: Path, label: str):
    """(cells, failed) for one kernel."""
    out = work / label / "out"
    skipped = out / "skipped"
    if skipped.exists():
        return [label, skipped.read_text().strip()] + [""] * len(CELLS), False
    release = (out / "release").read_text().strip() if (out / "release").exists() else "?"
    if not (out / "done").exists():
        return [label, release, "FAIL: the run did not finish"] + [""] * (len(CELLS) - 1), True
    results = {}
    for line in (out / "results.tsv").read_text().splitlines():
        cell, verdict, secs, detail = (line.split("\t") + ["", "", ""])[:4]
        results[cell] = (verdict, detail)
    try:
        doctor = json.loads((out / "doctor.json").read_text())
        caps = {c["key"]: c["status"] for c in doctor["capabilities"]}
    except (OSError, ValueError, KeyError):
        caps = {}
    rc = (out / "doctor.rc").read_text().strip() if (out / "doctor.rc").exists() else "?"
    failed = False
    cells = [label, release]
    # doctor: exit 0 exactly when hdrtap http works here, and no capture
    # it calls available fails its tests.
    http_ok = results.get("http", ("fail", ""))[0] == "pass"
    lying = [c for c, (v, _) in results.items() if v == "fail" and caps.get(c) in ("ok", "fallback")]
    if (rc == "0") != http_ok:
        cells.append(f"FAIL: exit {rc}")
        failed = True
    elif lying:
        cells.append("FAIL: ok for " + ", ".join(lying))
        failed = True
    else:
        cells.append("pass" if rc == "0" else f"pass (exit {rc}, says why)")
    for key, _ in CELLS:
        verdict, detail = results.get(key, ("fail", "not run"))
        if verdict == "pass":
            notes = []
            if detail.startswith("fallback"):
                notes.append(FALLBACK.get(key, "fallback"))
            if detail.endswith("run 2"):
                notes.append("2nd run")
            text = "pass" + (f" ({', '.join(notes)})" if notes else "")
        elif verdict == "na":
            text = "n/a: " + short_reason(detail)
        else:
            text = f"FAIL ({detail})"
            failed = True
        cells.append(text)
    secs = (out / "seconds").read_text().strip() if (out / "seconds").exists() else "?"
    boots = " (2nd boot)" if (out / "boots").exists() else ""
    cells.append(f"{secs} s{boots}")
    return cells, failed


def failures(work: Path, labels) -> str:
    """Every failed test run's report (a cell's first run included when
    its second passed), for the log of a CI run that keeps no files."""
    out = []
    for label in labels:
        d = work / label / "out"
        if not (d / "results.tsv").exists():
            continue
        for line in (d / "results.tsv").read_text().splitlines():
            cell, verdict, _, detail = (line.split("\t") + ["", "", ""])[:4]
            logs = []
            if (d / f"{cell}.run1.log").exists():
                logs.append(d / f"{cell}.run1.log")
            if verdict == "fail" and (d / f"{cell}.log").exists():
                logs.append(d / f"{cell}.log")
            for log in logs:
                out.append(f"---- {label} / {cell}: {log.name} ({verdict}, {detail})")
                out.append(reports(log))
    return "\n".join(out)


def main(argv):
    if argv[:1] == ["--failures"]:
        text = failures(Path(argv[1]), argv[2:])
        if text:
            print(text)
        return 0
    check = argv[:1] == ["--check"]
    if check:
        argv = argv[1:]
    work, labels = Path(argv[0]), argv[1:]
    header = ["kernel", "release", "doctor"] + [name for _, name in CELLS] + ["time"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    any_failed = False
    for label in labels:
        cells, failed = row(work, label)
        cells += [""] * (len(header) - len(cells))
        any_failed |= failed
        lines.append("| " + " | ".join(cells) + " |")
    if check:
        return 1 if any_failed else 0
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
