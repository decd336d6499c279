"""Write a run's report: one self-contained HTML file, written atomically."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.errors import one_line
from core.files import atomic_write_text
from core.report.contents import gather
from core.report.images import FilmPictures
from core.report.output import ReportError, check_output
from core.report.render import render

__all__ = ["ReportError", "WrittenReport", "check_output", "report_html", "write_report"]


@dataclass(frozen=True)
class WrittenReport:
    """Where the report went and what it holds."""

    out: Path
    n_bytes: int
    n_films: int
    n_groups: int
    n_listed: int  # films on the quality lists shown


def report_html(run_dir: str | Path, key: bytes, roots: tuple[Path, ...] = (),
                progress: Callable[[int, int], None] | None = None) -> tuple[str, int, int, int]:
    """The report of a run as HTML, with its film, group and listed-film counts."""
    contents = gather(run_dir, key, roots, progress)
    html = render(contents, FilmPictures(roots))
    listed = sum(len(x) for x in contents.quality.lists)
    return html, contents.summary.n_films, len(contents.groups), listed


def write_report(run_dir: str | Path, out: str | Path, key: bytes, roots: tuple[Path, ...] = (),
                 progress: Callable[[int, int], None] | None = None) -> WrittenReport:
    """Write the report of `run_dir` to `out` (checked first, then written atomically).

    Args:
        run_dir: the run folder.
        out: the HTML file to write.
        key: the workspace's patient key (patients appear by keyed name only).
        roots: the allowed roots films added from elsewhere may lie in.
        progress: (done, total) while films are measured for the quality lists.

    Raises:
        ReportError: `out` cannot be written; RunError, ConfigError: the run is incomplete.
    """
    path = check_output(out)
    html, n_films, n_groups, n_listed = report_html(run_dir, key, roots, progress)
    data = html.encode("utf-8")
    try:
        atomic_write_text(path, html)
    except OSError as e:  # the temp file is gone again; the old report, if any, is untouched
        raise ReportError(f"cannot write the report to {path}: {one_line(e)}") from None
    return WrittenReport(path, len(data), n_films, n_groups, n_listed)
