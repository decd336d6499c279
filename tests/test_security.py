"""Security: nothing unsafe is loaded or executed, the app is private by default, the browser
cannot reach outside the allowed folders, uploads are capped, and names from users' files
show as text, never as HTML or Markdown."""

from __future__ import annotations

import ast
import functools
import io
import json
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

import core.data.upload
from core.data.upload import UploadError, extract_dataset_zip
from core.jobs import duplicates as duplicate_job
from pages._search_ui import QueryError, read_dataset_query
from tests import bad_inputs as bi
from tests.page_helpers import APP, open_page

ROOT = Path(__file__).resolve().parents[1]
SCANNED = sorted([*ROOT.glob("core/**/*.py"), *ROOT.glob("pages/*.py"), *ROOT.glob("benchmarks/*.py"),
                  ROOT / "streamlit_app.py"])
UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "joblib", "shelve", "marshal"}
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__", "os.system", "os.popen", "st.html",
                "components.html", "pd.read_pickle", "yaml.load", "yaml.unsafe_load"}


# ---- static checks over the code --------------------------------------------------------------

def _true_or_unknown(node: ast.expr | None) -> bool:
    return node is not None and not (isinstance(node, ast.Constant) and node.value is False)


def unsafe_uses(source: str) -> list[str]:
    """What in `source` could load a pickle, run code, spawn a shell or render raw HTML."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"import {m}" for m in modules if m.split(".")[0] in UNSAFE_MODULES]
            if isinstance(node, ast.ImportFrom) and node.module == "torch":
                found += ["from torch import load" for a in node.names if a.name == "load"]
        if not isinstance(node, ast.Call):
            continue
        name, kw = ast.unparse(node.func), {k.arg: k.value for k in node.keywords}
        weights_only = kw.get("weights_only")
        if name == "torch.load" and not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
            found.append(f"line {node.lineno}: torch.load without weights_only=True")
        if name in UNSAFE_CALLS:
            found.append(f"line {node.lineno}: {name}(...)")
        for key in ("allow_pickle", "shell", "unsafe_allow_html"):
            if _true_or_unknown(kw.get(key)):
                found.append(f"line {node.lineno}: {name}({key}=...)")
    return found


@pytest.mark.parametrize("snippet", [
    "import pickle", "from joblib import load", "torch.load(p)", "torch.load(p, weights_only=False)",
    "from torch import load", "np.load(p, allow_pickle=True)", "eval(text)", "exec(code)",
    "subprocess.run(cmd, shell=True)", "os.system(cmd)", "st.markdown(name, unsafe_allow_html=True)",
    "st.html(name)", "pd.read_pickle(p)",
])
def test_the_scanner_catches_each_pattern(snippet):
    assert unsafe_uses(snippet)


def test_no_pickle_eval_shell_or_raw_html_in_the_code():
    found = {str(p.relative_to(ROOT)): unsafe_uses(p.read_text(encoding="utf-8")) for p in SCANNED}
    assert len(found) > 50 and {k: v for k, v in found.items() if v} == {}


# ---- the app's settings -------------------------------------------------------------------------

def test_config_keeps_the_app_private_capped_and_quiet():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["address"] == "localhost"
    assert cfg["browser"]["gatherUsageStats"] is False
    assert 0 < cfg["server"]["maxUploadSize"] <= 1024
    assert cfg["server"].get("enableXsrfProtection", True) and cfg["server"].get("enableCORS", True)
    make = (ROOT / "Makefile").read_text()
    assert "0.0.0.0" not in make and "server.address" not in make and "gatherUsageStats" not in make


def test_streamlit_itself_reads_those_settings():
    code = ("import json; from streamlit import config as c; c.get_config_options(force_reparse=True); "
            "print(json.dumps([c.get_option(k) for k in ('server.address', 'browser.gatherUsageStats', "
            "'server.maxUploadSize', 'server.enableXsrfProtection')]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=120).stdout
    address, stats, limit, xsrf = json.loads(out.strip().splitlines()[-1])
    assert (address, stats, xsrf) == ("localhost", False, True) and limit == 200


# ---- folders: nothing the browser sends leaves the allowed roots --------------------------------

def test_pick_from_the_dataset_cannot_leave_the_dataset(tmp_path):
    data = tmp_path / "data"
    (data / "A").mkdir(parents=True)
    (tmp_path / "secret.png").write_bytes(bi.webp(tmp_path).read_bytes())
    (data / "A" / "link.png").symlink_to(tmp_path / "secret.png")
    for rel in ("../secret.png", "A/../../secret.png", str(tmp_path / "secret.png"), "A/link.png"):
        result = read_dataset_query(data, rel)
        assert isinstance(result, QueryError) and "outside the dataset folder" in result.message


def test_duplicate_search_from_the_page_takes_only_the_run(tmp_path, monkeypatch):
    """The page starts `duplicates --run RUN` (RUN inside the workspace); no --data from the browser."""
    started = []

    class FakePopen:
        pid = 99999999

        def __init__(self, command, **kw):
            started.append(command)

        def poll(self):
            return 0

    from core.jobs import process

    monkeypatch.setattr(process.subprocess, "Popen", FakePopen)
    run = tmp_path / "ws" / "runs" / "r"
    run.mkdir(parents=True)
    duplicate_job.start_search(run, 0.97)
    assert started == [[sys.executable, "-m", "core", "duplicates", "--run", str(run.resolve()),
                        "--threshold", "0.97"]]


# ---- uploads: capped, unpacked safely, decoded with the bomb guard ------------------------------

def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_zip_bomb_with_lying_headers_is_refused_and_leaves_nothing(tmp_path):
    """Headers claim 100 bytes; the entry inflates to 5 MB. Real bytes are what count."""
    data = bytearray(_zip({"A/a.png": b"\0" * 5_000_000, "B/b.png": b"x"}))
    small = (100).to_bytes(4, "little")
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    data[local + 22:local + 26], data[central + 24:central + 28] = small, small
    with pytest.raises(UploadError):
        extract_dataset_zip(io.BytesIO(bytes(data)), tmp_path / "sub" / "ds", max_bytes=1_000_000)
    assert not (tmp_path / "sub").exists() or not any((tmp_path / "sub").iterdir())


@pytest.fixture
def home(tmp_path, monkeypatch):
    from core.runs.workspace import Workspace

    root = tmp_path / "ws"
    Workspace(root).update(dataset=str(tmp_path / "gone"))  # no first-start demo
    monkeypatch.setenv("CXR_WORKSPACE", str(root))
    return root


def _errors(at: AppTest) -> list[str]:
    """Error lines, less the one about the fixture's missing dataset."""
    return [e.value for e in at.error if "dataset folder not found" not in e.value]


def _upload_zip(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader[0].set_value((name, data, "application/zip")).run()
    unpack = [b for b in at.button if b.label.startswith("Unpack")]
    if unpack:
        unpack[0].click().run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("entries, needle", [
    ({"Normal/a.png": b"x", "/etc/evil.png": b"x"}, "absolute path"),
    ({"Normal/a.png": b"x", "Normal/../../evil.png": b"x"}, "leaves the folder"),
    ({"Normal/a.png": b"\0" * 3_000_000, "COVID/b.png": b"\0" * 3_000_000}, "more than 2 MB"),
])
def test_bad_zip_uploads_get_one_line_and_write_nothing(home, monkeypatch, entries, needle):
    capped = functools.partial(core.data.upload.extract_dataset_zip, max_bytes=2_000_000)
    monkeypatch.setattr(core.data.upload, "extract_dataset_zip", capped)  # the page imports it per run
    at = _upload_zip(AppTest.from_file(APP, default_timeout=60).run(), "upload.zip", _zip(entries))
    errors = _errors(at)
    assert len(errors) == 1 and needle in errors[0]
    assert not (home / "datasets").exists() or not any((home / "datasets").iterdir())
    assert not (home / "evil.png").exists() and not (home.parent / "evil.png").exists()


def test_upload_over_the_size_limit_is_refused(home):
    limit = st_config.get_option("server.maxUploadSize")
    st_config.set_option("server.maxUploadSize", 1)  # MB; the page reads the option each run
    try:
        at = _upload_zip(AppTest.from_file(APP, default_timeout=60).run(), "big.zip", bytes(1_500_000))
    finally:
        st_config.set_option("server.maxUploadSize", limit)
    assert _errors(at) == ["big\\.zip is 2 MB, over the 1 MB upload limit."]
    assert not any(b.label.startswith("Unpack") for b in at.button)


def test_decompression_bomb_upload_on_search_is_one_line(tiny_workspace, tmp_path):
    at = open_page("pages/search.py")
    at.file_uploader(key="search_upload").set_value(("bomb.png", bi.bomb_png(tmp_path).read_bytes(),
                                                     "image/png")).run()
    assert not at.exception and len(at.error) == 1
    assert at.error[0].value.startswith("bomb\\.png\\: refused")
    assert "possible decompression bomb" in at.error[0].value
    assert not any(t.value.startswith("#1 ·") for t in at.text)
