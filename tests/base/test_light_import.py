"""`import core` and `python -m core --help` load no torch, FAISS or pydicom (lazy facades)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "faiss", "pydicom", "streamlit")

PROBE = """
import sys
import core
import core.cli.main as cli
try:
    cli.build_parser().parse_args(["--help"])
except SystemExit:
    pass
{extra}
print("HEAVY:" + " ".join(m for m in {heavy!r} if m in sys.modules))
"""


def _loaded(extra: str = "") -> str:
    out = subprocess.run([sys.executable, "-c", PROBE.format(extra=extra, heavy=HEAVY)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return out.stdout.rsplit("HEAVY:", 1)[1].strip()


def test_import_core_and_help_load_nothing_heavy() -> None:
    assert _loaded() == ""


def test_the_probe_sees_a_heavy_import() -> None:
    assert _loaded("core.SimCLRModel") == "torch"


def test_every_facade_name_resolves() -> None:
    out = subprocess.run([sys.executable, "-c", """
import importlib, core
for pkg in ["core"] + ["core." + p for p in ("data", "model", "train", "embed", "index",
            "geometry", "retrieval", "duplicates", "review", "demo", "runs", "jobs", "cli")]:
    m = importlib.import_module(pkg)
    for name in m.__all__:
        getattr(m, name)
print("ok")
"""], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]
