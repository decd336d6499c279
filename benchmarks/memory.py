"""Server memory for big uploads: peak RSS growth while two 64 MP PNGs are decoded at once.

Each upload goes through what the Search page does with it: `load_image` on the bytes, the
screen preview, and the model's view (`eval_view`). Measured in a fresh process, with RSS
sampled every 5 ms (ru_maxrss would include the interpreter's start). Issue 10 sets the
target: under +600 MB for two 64 MP uploads (before: +2.4 GB grayscale, +4.4 GB RGB).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import LOWER, emit, note

SIDE = 7_990  # 63.8 MP, just under core.data.imageio.MAX_PIXELS
ROOT = Path(__file__).resolve().parent.parent

_MAKE = """
import sys
import numpy as np
from PIL import Image
n, mode, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ramp = np.broadcast_to((np.arange(n) % 256).astype(np.uint8), (n, n))
a = np.ascontiguousarray(ramp if mode == "L" else np.stack([ramp, ramp[::-1], ramp.T], -1))
Image.fromarray(a, mode).save(out, compress_level=9)  # ~80-200 KB, as in the issue
"""

_MEASURE = """
import json, sys, threading, time
from core.data.imageio import load_image, preview
from core.model.transforms import eval_view

def rss():
    with open("/proc/self/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0]) / 1024

uploads = [open(p, "rb").read() for p in sys.argv[1:]]
base, peak, done = rss(), [rss()], [False]

def sample():
    while not done[0]:
        peak[0] = max(peak[0], rss())
        time.sleep(0.005)

def request(data):
    image = load_image(data, name="upload.png")
    preview(image.pixels)
    eval_view(image.pixels, 224)

sampler = threading.Thread(target=sample)
sampler.start()
threads = [threading.Thread(target=request, args=(d,)) for d in uploads]
for t in threads:
    t.start()
for t in threads:
    t.join()
done[0] = True
sampler.join()
print(json.dumps({"growth_mb": round(peak[0] - base, 1), "base_mb": round(base, 1)}))
"""


def measure(mode: str = "RGB", side: int = SIDE, uploads: int = 2) -> dict:
    """Peak RSS growth (MB) of a fresh process decoding `uploads` PNGs of side x side at once.

    Args:
        mode: 'RGB' or 'L' (the PNG's colour mode).
        side: the image side in pixels.
        uploads: how many requests run at once (same image).
    """
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / f"big_{mode}.png"
        subprocess.run([sys.executable, "-c", _MAKE, str(side), mode, str(png)], check=True)
        out = subprocess.run([sys.executable, "-c", _MEASURE, *[str(png)] * uploads], cwd=ROOT,
                             check=True, capture_output=True, text=True)
        return {**json.loads(out.stdout.strip().splitlines()[-1]), "png_kb": png.stat().st_size // 1024}


def run(quick: bool) -> None:
    for mode in ("L", "RGB"):
        note(f"memory: two {SIDE}x{SIDE} {mode} uploads")
        r = measure(mode)
        emit(f"memory.two_64mp_uploads_{mode.lower()}", r["growth_mb"], "MB", better=LOWER,
             reference="target (issue 10)", reference_value=600.0, png_kb=r["png_kb"])
