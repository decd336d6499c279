"""Films as small JPEG `data:` URIs, so a report carries its pictures inside the one file."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from PIL import Image

from core.data.access import dataset_file
from core.data.imageio import ImageReadError, load_image, to_uint8

SIDE = 128  # px, the long side of a film in the report
QUALITY = 70  # JPEG quality: about 3-5 KB a film


def jpeg_data_uri(pixels: np.ndarray, side: int = SIDE, quality: int = QUALITY) -> str:
    """(H, W) pixels in [0, 1] as a grey JPEG that fits side x side, base64 in a data: URI."""
    im = Image.fromarray(to_uint8(pixels), mode="L")
    im.thumbnail((side, side), Image.Resampling.LANCZOS)  # keeps the aspect ratio
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class FilmPictures:
    """Films as data: URIs, each read once (through `dataset_file`): `pictures(root, path)`.
    A film that cannot be read, or lies outside its dataset folder and `roots`, shows as a
    grey square."""

    def __init__(self, roots: tuple[Path, ...] = (), side: int = SIDE) -> None:
        self.roots, self.side = roots, side
        self._done: dict[tuple[str, str], str] = {}
        self._grey = jpeg_data_uri(np.full((side, side), 0.5, np.float32), side)

    def __call__(self, data_root: str | Path, rel_path: str) -> str:
        key = (str(data_root), rel_path)
        if key not in self._done:
            try:
                path = dataset_file(data_root, rel_path, self.roots)
                pixels = load_image(path, name=rel_path, max_side=4 * self.side).pixels
                self._done[key] = jpeg_data_uri(pixels, self.side)
            except ImageReadError:
                self._done[key] = self._grey
        return self._done[key]
