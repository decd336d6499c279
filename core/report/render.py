"""A run's report as one self-contained HTML page: inline style, films as data: URIs, no
script, font or address outside the file (a Content-Security-Policy says so to the browser).

Every text from the run (file names, labels, reasons) is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from pathlib import Path

from core.duplicates.candidates import CandidatePair
from core.quality.findings import FindingList
from core.report.contents import ReportContents

MAX_GROUPS = 60  # duplicate groups shown (largest first); the app lists all
MAX_ROWS = 100  # rows of a leakage table
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1100px;
color:#1f2328;padding:0 16px;line-height:1.4}
h1{margin-bottom:4px}h2{border-bottom:1px solid #d0d7de;padding-bottom:4px;margin-top:32px}
nav a{margin-right:14px}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:left;font-size:14px}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
.films{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;width:150px;font-size:12px;overflow-wrap:anywhere}
figure img{display:block;width:128px;height:128px;object-fit:contain;background:#eee}
.group{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;margin:10px 0}
.note{color:#57606a}.warn{color:#9a6700}
"""


def render(contents: ReportContents, picture: Callable[[Path, str], str]) -> str:
    """The report's HTML.

    Args:
        contents: what the report shows (`gather`).
        picture: (dataset folder, film path) -> data: URI of the film.
    """
    s = contents.summary
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>Report: {escape(s.run)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Run report: {escape(s.run)}</h1>",
        f'<p class="note">Generated {escape(s.generated)}. One file: every film inside it, no '
        "request leaves it when it is opened.</p>",
        '<nav><a href="#summary">Summary</a><a href="#duplicates">Duplicates</a>'
        '<a href="#leakage">Leakage</a><a href="#quality">Data quality</a>'
        '<a href="#metrics">Metrics</a></nav>',
        _summary(contents), _duplicates(contents, picture), _leakage(contents, picture),
        _quality(contents, picture), _metrics(contents), "</body></html>",
    ]
    return "\n".join(parts)


def _count(n: int, one: str, many: str) -> str:
    """'1 film', '3 films' (the noun given for each)."""
    return f"{n:,} {one if n == 1 else many}"


def _table(header: Sequence[str] | None, rows: Sequence[Sequence[object]]) -> str:
    head = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f'<td class="n">{value:.3f}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="n">{value:,}</td>'
    return f"<td>{escape('—' if value is None else str(value))}</td>"


def _figure(uri: str, lines: Sequence[str]) -> str:
    text = "<br>".join(escape(line) for line in lines if line)
    return f'<figure><img src="{uri}" alt=""><figcaption>{text}</figcaption></figure>'


def _film(contents: ReportContents, picture, root: Path, path: str, *extra: str) -> str:
    label, split = contents.films.get(path, ("", ""))
    return _figure(picture(root, path), [*extra, Path(path).name, label, split and f"split: {split}"])


def _summary(c: ReportContents) -> str:
    s = c.summary
    labels = ", ".join(f"{k} {v:,}" for k, v in s.labels.items()) or "none"
    if s.labels and s.n_unlabelled:
        labels += f" ({s.n_unlabelled:,} films without one)"
    rows = [("Films", s.n_films), ("Patients", s.n_patients or "not known"), ("Labels", labels),
            ("Splits", ", ".join(f"{k} {v:,}" for k, v in s.splits.items())),
            ("Dataset folder", s.dataset), ("Model", f"{s.arch}, {s.image_size} px, {s.epochs} epochs"),
            ("Preset", s.preset)]
    return '<h2 id="summary">Summary</h2>' + _table(None, rows)


def _pair_rows(pairs: Sequence[CandidatePair]) -> list[tuple]:
    return [(Path(p.a).name, Path(p.b).name, p.kind, p.score, p.hash_distance,
             "yes" if p.cross_split else "no") for p in pairs]


def _duplicates(c: ReportContents, picture) -> str:
    out = ['<h2 id="duplicates">Duplicate groups</h2>']
    d = c.duplicates
    if d is None:
        out.append('<p class="note">No duplicate search in this run yet: run '
                   f"<code>python -m core duplicates --run {escape(c.summary.run)}</code> "
                   "(or the Duplicates page), then make the report again.</p>")
        return "\n".join(out)
    groups = c.groups
    out.append(f"<p>{_count(len(d.flagged), 'flagged pair', 'flagged pairs')} in "
               f"{_count(len(groups), 'group', 'groups')} among {d.n_images:,} films; rule: "
               f"{escape(d.rule.describe())}.</p>")
    for n, (members, pairs) in enumerate(groups[:MAX_GROUPS], 1):
        films = "".join(_film(c, picture, d.data_root, m) for m in members)
        out.append(f'<div class="group"><h3>Group {n}: {len(members)} films</h3>'
                   f'<div class="films">{films}</div>'
                   + _table(["film", "film", "kind", "cosine", "pHash bits", "across splits"],
                            _pair_rows(pairs[:MAX_ROWS])) + _more(len(pairs)) + "</div>")
    if len(groups) > MAX_GROUPS:
        out.append(f'<p class="note">{len(groups) - MAX_GROUPS:,} smaller groups are not shown '
                   "here; the app's Duplicates page lists them all.</p>")
    return "\n".join(out)


def _more(n: int) -> str:
    """A line for the rows left out of a table capped at MAX_ROWS ('' when none are)."""
    return f'<p class="note">{n - MAX_ROWS:,} more not shown.</p>' if n > MAX_ROWS else ""


def _leakage(c: ReportContents, picture) -> str:
    leak = c.leakage
    out = ['<h2 id="leakage">Leakage across splits</h2>']
    if c.duplicates is not None:
        n = len(leak.cross_split_pairs)
        out.append(f"<p>{_count(n, 'flagged duplicate pair sits', 'flagged duplicate pairs sit')} in "
                   "different splits (a test film whose copy was trained on inflates test metrics).</p>")
        root = c.duplicates.data_root
        for p in leak.cross_split_pairs[:MAX_GROUPS]:
            out.append('<div class="group"><div class="films">'
                       + _film(c, picture, root, p.a) + _film(c, picture, root, p.b)
                       + f"</div>{escape(p.kind)}, cosine {p.score:.3f}</div>")
        if n > MAX_GROUPS:
            out.append(f'<p class="note">{n - MAX_GROUPS:,} more pairs are not shown here; the '
                       "app's Duplicates page (Leakage) lists them all.</p>")
    else:
        out.append('<p class="note">Duplicate pairs across splits need a duplicate search (see above).</p>')
    n = leak.n_patients_across_splits
    out.append(f"<p>{_count(n, 'patient has', 'patients have')} films in more than one split.</p>")
    if leak.patient_leaks:
        rows = [(c.patient_names.get(x.patient, ""), Path(x.a).name, x.split_a, Path(x.b).name,
                 x.split_b, x.score) for x in leak.patient_leaks[:MAX_ROWS]]
        out.append(_table(["patient", "film", "split", "film", "split", "cosine"], rows)
                   + _more(len(leak.patient_leaks)))
    return "\n".join(out)


def _quality(c: ReportContents, picture) -> str:
    q = c.quality
    out = ['<h2 id="quality">Data quality</h2>']
    if q.unreadable:
        out.append(f'<p class="warn">{_count(len(q.unreadable), "film", "films")} could not be read '
                   "and are on no list.</p>")
    for lst in q.lists:
        out.append(f'<h3>{escape(lst.title)} ({len(lst):,})</h3><p class="note">{escape(lst.meaning)}.</p>')
        out.append(_findings(lst, q.data_root, c, picture))
    return "\n".join(out)


def _findings(lst: FindingList, root: Path, c: ReportContents, picture) -> str:
    if lst.skipped:
        return f"<p>{escape(lst.skipped)}</p>"
    if lst.pending:
        return "<p>Not measured.</p>"
    if not lst.findings:
        return "<p>No film on this list.</p>"
    films = "".join(_film(c, picture, root, f.path, f"{n}. {f.reason}")
                    for n, f in enumerate(lst.findings, 1))
    return f'<div class="films">{films}</div>'


def _metrics(c: ReportContents) -> str:
    out = ['<h2 id="metrics">Retrieval metrics</h2>']
    ev = c.evaluation
    if ev is None:
        out.append('<p class="note">No evaluation in this run: run '
                   f"<code>python -m core evaluate --run {escape(c.summary.run)}</code>.</p>")
        return "\n".join(out)
    keys = ("precision_at_1", "precision_at_5", "precision_at_10", "map", "map_at_r")
    header = ["", "P@1", "P@5", "P@10", "mAP", "mAP@R", "same-patient P@1"]
    same = {"model": ev.same_patient or {}, **(ev.baseline_same_patient or {})}
    rows = []
    for name, scores in [("model", ev.scores), *(ev.baselines or {}).items()]:
        d = scores.to_dict()
        rows.append([name, *(d[k] for k in keys), (same.get(name) or {}).get("precision_at_1")])
    out.append(_table(header, rows))
    out.append(f'<p class="note">{ev.scores.n_queries:,} queries, gallery {ev.scores.n_gallery:,}: '
               f"{escape(ev.protocol)}.</p>")
    if ev.label_metrics_skipped:
        out.append(f"<p>{escape(ev.label_metrics_skipped)}</p>")
    return "\n".join(out)
