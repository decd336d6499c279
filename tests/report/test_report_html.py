"""The report: one self-contained HTML file (no address outside it), with the summary,
duplicate groups with both films, leakage, the quality lists and the metrics beside baselines."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser

import pytest
from PIL import Image

from core.data.patient_ids import display_patient
from core.duplicates.candidates import CandidatePair
from core.duplicates.leakage import leakage_report
from core.duplicates.rules import Rule
from core.duplicates.search import DuplicateResult, save_result
from core.embed.embeddings import Embeddings
from core.files import atomic_write_json
from core.report import report_html, write_report
from core.retrieval.evaluate import Evaluation
from core.retrieval.metrics import RetrievalScores
from core.run_folder import RunPaths
from tests.quality._runs import Film, chest, make_run, standard_films

KEY = b"k" * 32
URL_ATTRS = {"src", "href", "srcset", "action", "formaction", "poster", "data", "background",
             "xlink:href", "cite", "longdesc", "manifest", "ping"}


class _Refs(HTMLParser):
    """Every attribute that can name an address, and every tag, of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.tags: set[str] = set()
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for name, value in attrs:
            if name in URL_ATTRS:
                self.refs.append((tag, name, value or ""))
            if tag == "img" and name == "src":
                self.images.append(value)


def parse(html: str) -> _Refs:
    p = _Refs()
    p.feed(html)
    return p


def assert_self_contained(html: str) -> _Refs:
    p = parse(html)
    outside = [r for r in p.refs if not (r[2].startswith("data:") or r[2].startswith("#"))]
    assert outside == []
    assert not p.tags & {"script", "link", "iframe", "object", "embed", "base", "form", "audio", "video"}
    assert "@import" not in html and "url(" not in html and "@font-face" not in html
    assert "http://" not in html and "https://" not in html
    return p


def _films() -> list[Film]:
    films = standard_films()
    # one patient in two splits: a0 (train) and a1 (test), under an id no page may show
    return [Film(f.name, f.pixels, f.label, f.vector, "test" if f.name == "a/a1.png" else "train",
                 "MRN4711" if f.name in ("a/a0.png", "a/a1.png") else "") for f in films]


@pytest.fixture
def run(tmp_path):
    return make_run(tmp_path, _films())


def _with_duplicates(run):
    emb = Embeddings.load(run)
    i, j = emb.paths.index("a/a0.png"), emb.paths.index("a/a1.png")
    pair = CandidatePair("a/a0.png", "a/a1.png", i, j, 0.991, 3, False, True, True, True, "copy")
    save_result(DuplicateResult(run, run, tmp_data(run), "fixed", Rule(0.95, -1), None, None, len(emb),
                                [pair], [["a/a0.png", "a/a1.png"]], leakage_report(emb, [pair])))


def tmp_data(run):
    return run.parent / "data"


def _with_evaluation(run):
    model = RetrievalScores(0.9, 0.8, 0.7, 0.6, 0.5, 13, 12)
    pixels = RetrievalScores(0.4, 0.3, 0.2, 0.1, 0.05, 13, 12)
    atomic_write_json(RunPaths(run).evaluation, Evaluation(
        model, "queries = test split", str(tmp_data(run)), {"raw pixels": pixels},
        {"precision_at_1": 0.75}).to_dict())


def test_the_report_opens_with_nothing_from_outside_and_holds_every_section(run, tmp_path):
    _with_duplicates(run)
    _with_evaluation(run)
    out = tmp_path / "report.html"
    w = write_report(run, out, KEY)
    html = out.read_text(encoding="utf-8")
    assert w.n_bytes == len(html.encode()) and w.n_films == 13 and w.n_groups == 1
    p = assert_self_contained(html)
    anchors = {v for _, _, v in p.refs if v.startswith("#")}
    assert anchors == {"#summary", "#duplicates", "#leakage", "#quality", "#metrics"}
    assert all(f'id="{a[1:]}"' in html for a in anchors)
    # films inside the file: small JPEGs, base64
    assert p.images and all(src.startswith("data:image/jpeg;base64,") for src in p.images)
    im = Image.open(io.BytesIO(base64.b64decode(p.images[0].split(",", 1)[1])))
    assert im.format == "JPEG" and max(im.size) <= 128
    # summary
    assert "<td>Films</td><td class=\"n\">13</td>" in html
    assert "<td>Labels</td><td>a 7, b 6</td>" in html and "<td>Preset</td><td>tiny</td>" in html
    # the duplicate group shows both films, and the leakage names the patient by keyed name only
    group = html[html.index("Group 1"):html.index('id="leakage"')]
    assert "a0.png" in group and "a1.png" in group and group.count("<img") == 2
    assert "MRN4711" not in html and display_patient("MRN4711", KEY) in html
    assert "1 flagged duplicate pair sits in different splits" in html
    # quality lists, with their reasons
    for title in ("Outliers (1)", "Exposure (2)", "Blur (1)", "Near-empty or not a radiograph (2)"):
        assert f"<h3>{title}</h3>" in html
    assert "far.png" in html and "too dark: mean grey" in html
    # metrics beside the baseline
    metrics = html[html.index('id="metrics"'):]
    assert re.search(r"<td>model</td><td class=\"n\">0\.900</td>.*<td class=\"n\">0\.750</td>", metrics)
    assert "<td>raw pixels</td><td class=\"n\">0.400</td>" in metrics


def test_without_a_search_or_an_evaluation_the_report_says_what_to_run(run):
    html = report_html(run, KEY)[0]
    assert_self_contained(html)
    assert "No duplicate search in this run yet" in html and "No evaluation in this run" in html
    assert "1 patient has films in more than one split" in html  # from the embedding's ids


def test_text_from_the_run_is_escaped(tmp_path):
    films = [Film(f"<b>x{i}</b>.png", chest(i), "<script>alert(1)</script>", (1.0, 0.1 * i))
             for i in range(4)]
    html = report_html(make_run(tmp_path, films), KEY)[0]
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert_self_contained(html)


def test_the_check_catches_an_outside_address():
    with pytest.raises(AssertionError):
        assert_self_contained('<img src="https://example.org/x.png">')
    with pytest.raises(AssertionError):
        assert_self_contained('<a href="//cdn.example/x">x</a>')
    with pytest.raises(AssertionError):
        assert_self_contained('<div style="background:url(x.png)"></div>')


def test_the_tiny_run_report_is_self_contained(_tiny_workspace_built, tmp_path):
    """The real tiny run (trained, evaluated with baselines), in a copy without checkpoints:
    the report measures its films into the run folder, so never into the shared one."""
    import shutil

    src = _tiny_workspace_built.run_dir
    run = tmp_path / "runs" / src.name
    shutil.copytree(src, run, ignore=shutil.ignore_patterns("*.pt", "thumbnails"))
    html = report_html(run, KEY)[0]
    assert_self_contained(html)
    metrics = html[html.index('id="metrics"'):]
    assert "<td>model</td>" in metrics and metrics.count("<tr>") >= 3  # header, model, baselines
