"""Server memory for big uploads: peak RSS growth while two 64 MP images are decoded at once.

Each upload goes through what the Search page does with it: `load_image` on the bytes, the
display window (DICOM), the screen preview, and the model's view (`eval_view`). Measured in a
fresh process, with RSS sampled every 5 ms (ru_maxrss would include the interpreter's start);
the uploads' own bytes are read before the baseline, as Streamlit holds them already. Issue 10
set the target for PNG: under +600 MB for two 64 MP uploads (before: +2.4 GB grayscale,
+4.4 GB RGB); issue 28 holds DICOM to the same (before: +2.3 GB for one 64 MP DICOM).
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
KINDS = ("L", "RGB", "DICOM")  # 8-bit grayscale PNG, RGB PNG, 16-bit (12 stored) DICOM

_MAKE = """
import sys
import numpy as np
n, kind, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ramp = np.broadcast_to((np.arange(n) % 256).astype(np.uint8), (n, n))
if kind == "DICOM":
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.Modality, ds.PhotometricInterpretation, ds.SamplesPerPixel = "DX", "MONOCHROME2", 1
    ds.Rows = ds.Columns = n
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    ds.PixelData = (ramp.astype(np.uint16) * 16).tobytes()  # 128 MB, as a detector writes it
    ds.save_as(out, enforce_file_format=True)
else:
    from PIL import Image
    a = np.ascontiguousarray(ramp if kind == "L" else np.stack([ramp, ramp[::-1], ramp.T], -1))
    Image.fromarray(a, kind).save(out, compress_level=9)  # ~80-200 KB, as in the issue
"""

_MEASURE = """
import json, sys, threading, time
from core.data import default_window, load_image, preview, window_presets, windowed_pixels
from core.model.transforms import eval_view

def rss():
    with open("/proc/self/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0]) / 1024

name = sys.argv[1]
uploads = [open(p, "rb").read() for p in sys.argv[2:]]
base, peak, done = rss(), [rss()], [False]

def sample():
    while not done[0]:
        peak[0] = max(peak[0], rss())
        time.sleep(0.005)

def request(data):
    image = load_image(data, name=name)
    window_presets(image)
    pixels = windowed_pixels(image, default_window(image))
    preview(pixels)
    eval_view(pixels, 224)

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


def measure(kind: str = "RGB", side: int = SIDE, uploads: int = 2) -> dict:
    """Peak RSS growth (MB) of a fresh process decoding `uploads` images of side x side at once.

    Args:
        kind: 'L' or 'RGB' (a PNG of that colour mode) or 'DICOM' (16-bit, 12 bits stored).
        side: the image side in pixels.
        uploads: how many requests run at once (same image).

    Returns:
        {"growth_mb", "base_mb", "file_kb"}.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("big.dcm" if kind == "DICOM" else f"big_{kind}.png")
        subprocess.run([sys.executable, "-c", _MAKE, str(side), kind, str(path)], check=True)
        out = subprocess.run([sys.executable, "-c", _MEASURE, path.name, *[str(path)] * uploads],
                             cwd=ROOT, check=True, capture_output=True, text=True)
        return {**json.loads(out.stdout.strip().splitlines()[-1]), "file_kb": path.stat().st_size // 1024}


def run(quick: bool) -> None:
    for kind in KINDS:
        what = "DICOM" if kind == "DICOM" else f"{kind} PNG"
        note(f"memory: two {SIDE}x{SIDE} {what} uploads")
        r = measure(kind)
        emit(f"memory.two_64mp_uploads_{kind.lower()}", r["growth_mb"], "MB", better=LOWER,
             reference="target (issues 10, 28)", reference_value=600.0, file_kb=r["file_kb"])
