#!/usr/bin/env python3
"""The kernel matrix's verdict: reads each guest's results (kernel-matrix.sh's OUT/NAME/results), checks
every cell against the expected file (a cell not named there must pass; one named as refused must be
refused with an error matching the given regular expression, before anything changed), prints a
kernel x scenario table in Markdown, and exits 1 when a cell is not what was expected.
With --record FILE, the table replaces what stands between FILE's matrix markers."""
import argparse
import pathlib
import re
import sys

BEGIN, END = "<!-- kernel-matrix:begin -->", "<!-- kernel-matrix:end -->"


def expectations(path):
    expected = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(None, 3)
        if len(parts) < 3 or parts[2] not in ("pass", "refused"):
            sys.exit(f"{path}:{number}: expected 'KERNEL SCENARIO pass|refused [REGEX]'")
        expected[(parts[0], parts[1])] = (parts[2], re.compile(parts[3]) if len(parts) > 3 else None)
    return expected


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--expected", type=pathlib.Path, required=True)
    parser.add_argument("--out", type=pathlib.Path, required=True)
    parser.add_argument("--record", type=pathlib.Path)
    parser.add_argument("kernels", nargs="+")
    args = parser.parse_args()
    expected = expectations(args.expected)

    cells, releases, scenarios, problems = {}, {}, [], []
    for kernel in args.kernels:
        share = args.out / kernel
        uname = share / "uname"
        releases[kernel] = uname.read_text().split()[-1] if uname.exists() else "?"
        results = share / "results"
        planned = (share / "planned").read_text().split() if (share / "planned").exists() else []
        if not planned:
            problems.append(f"{kernel}: the guest ran no scenario (see {share}/guest.log)")
        exit_file = share / "exit"
        if exit_file.exists() and exit_file.read_text().strip() != "0":
            problems.append(f"{kernel}: the guest's job exited {exit_file.read_text().strip()} (see {share}/guest.log)")
        if not exit_file.exists():
            tail = ""
            console = share / "console.log"
            if console.exists():
                tail = " | ".join(console.read_text(errors="replace").splitlines()[-5:])
            problems.append(f"{kernel}: the guest did not finish its job ({tail})")
        for line in (results.read_text().splitlines() if results.exists() else []):
            name, outcome, seconds, detail = (line.split("\t", 3) + [""] * 4)[:4]
            if name not in scenarios:
                scenarios.append(name)
            cells[(kernel, name)] = (outcome, seconds, detail)
        for name in planned:
            if (kernel, name) not in cells:
                problems.append(f"{kernel} {name}: planned, but no result (the guest stopped?)")

    for (kernel, name), (outcome, _, detail) in cells.items():
        want, pattern = expected.get((kernel, name), ("pass", None))
        if outcome != want:
            problems.append(f"{kernel} {name}: {outcome}, expected {want}: {detail}")
        elif pattern and not pattern.search(detail):
            problems.append(f"{kernel} {name}: refused with '{detail}', expected /{pattern.pattern}/")

    def cell(kernel, name):
        if (kernel, name) not in cells:
            return "— (not run on this kernel)"
        outcome, seconds, detail = cells[(kernel, name)]
        if outcome == "pass":
            return f"✔ {detail}" if len(detail) < 160 else "✔"
        if outcome == "refused":
            return "refused: " + detail.removeprefix("error: ")[:240]
        return "✘ " + detail[:240]

    header = "| scenario | " + " | ".join(f"{k} ({releases[k]})" for k in args.kernels) + " |"
    rows = [header, "| --- |" + " --- |" * len(args.kernels)]
    for name in scenarios:
        rows.append(f"| {name} | " + " | ".join(cell(k, name).replace("|", "\\|") for k in args.kernels) + " |")
    table = "\n".join(rows)
    print(table)
    (args.out / "table.md").write_text(table + "\n")
    for problem in problems:
        print(f"kernel-matrix: {problem}", file=sys.stderr)
    if args.record and not problems:
        text = args.record.read_text()
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
        args.record.write_text(text[:start] + "\n" + table + "\n" + text[end:])
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
