"""`python -m benchmarks.report FILE.jsonl`: the figures of a benchmark run as a Markdown table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

SETTINGS = ("preset", "px", "n", "dim", "data", "ef_search", "recall_at_10", "dtype", "precision",
            "processes")


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return "" if v is None else str(v)


def table(records: list[dict]) -> str:
    """Markdown: one row per figure (machine and total lines become the heading)."""
    head = next((r for r in records if r["name"] == "machine"), {})
    total = next((r for r in records if r["name"] == "total_seconds"), {})
    lines = [f"Machine: {head.get('cpu', '?')}, {head.get('cores', '?')} cores "
             f"(torch threads {head.get('torch_threads', '?')}), Python {head.get('python', '?')}; "
             f"load average {head.get('load_1min', '?')} at the start, "
             f"{total.get('load_1min_end', '?')} at the end.  ",
             f"Command: `{head.get('command', '?')}`, {head.get('date', '?')}, "
             f"{_fmt(total.get('value'))} s in all.", "",
             "| figure | setting | project | reference | ratio | target |",
             "|---|---|---|---|---|---|"]
    for r in records:
        if r["name"] in ("machine", "total_seconds"):
            continue
        setting = ", ".join(f"{k} {_fmt(r[k])}" for k in SETTINGS if r.get(k) is not None)
        ref = (f"{_fmt(r['reference_value'])} ({r['reference']})" if "reference_value" in r else "")
        lines.append(f"| {r['name']} | {setting} | {_fmt(r['value'])} {r['unit']} | {ref} | "
                     f"{_fmt(r.get('ratio'))} | {_fmt(r.get('target'))} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m benchmarks.report FILE.jsonl\n")
        return 2
    records = [json.loads(line) for line in Path(args[0]).read_text().splitlines() if line.strip()]
    print(table(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
