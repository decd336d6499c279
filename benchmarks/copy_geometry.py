"""The geometric check's transform, measured: the similarity fit against the bounded affine fit.

`python benchmarks/copy_geometry.py --cxr ../shared/data/cxr` verifies, with each fit, the same
pairs of the development set and prints, per fit, the rule `choose_rule` picks (target
precision 0.99 at prevalence 0.01, as the search calibrates it) with its recall per edit family
and its false alarms:
- positives: one copy per edit family (`EDITS`, "combo" three times) of `--originals` films that
  have no near copy in the set, each verified against its original;
- negatives: every pair of films of one patient (serial films: the hardest non-copies) that is
  not a listed copy, and every film's 5 nearest other films by a model-free look-alike score
  (cosine of 32 px thumbnails), which stands in for the class embedding's candidates;
- the listed real pairs (`near_duplicates.csv`) and the pneumonia-7 pair, reported apart.
Needs no trained run.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data.imageio import load_image  # noqa: E402
from core.duplicates.calibration.known_pairs import make_copies, singletons  # noqa: E402
from core.duplicates.calibration.verification import (  # noqa: E402
    CALIBRATION_EDITS,
    choose_rule,
    precision_at,
)
from core.duplicates.evaluation.report import closure  # noqa: E402
from core.duplicates.hashing import hash_files  # noqa: E402
from core.geometry.features import features_of, image_features, normalise  # noqa: E402
from core.geometry.verify import fit_similarity, fit_transform, verify_pair  # noqa: E402

PNEUMONIA_7 = ("Bacterial_Pneumonia/ieee8023_pneumonia-7.png",
               "Bacterial_Pneumonia/ieee8023_streptococcus-pneumoniae-pneumonia-temporal-evolution-1-day1.png")
UNLISTED = Path(__file__).with_name("cxr_unlisted_copies.csv")  # copies seen by eye, not listed
FITS = {"similarity": fit_similarity, "affine (bounded)": fit_transform}


def look_alikes(root: Path, paths: list[str], k: int = 5) -> set[tuple[int, int]]:
    """Every film's k nearest others by cosine of centred 32 px thumbnails."""
    thumbs = []
    for p in paths:
        t = normalise((load_image(root / p).pixels * 255).astype(np.uint8), 32).astype(np.float32)
        t = np.resize(t, (32, 32)).ravel()
        t -= t.mean()
        thumbs.append(t / (np.linalg.norm(t) + 1e-9))
    v = np.array(thumbs)
    sims = v @ v.T
    np.fill_diagonal(sims, -np.inf)
    nn = np.argpartition(-sims, k, axis=1)[:, :k]
    return {(min(i, int(j)), max(i, int(j))) for i, row in enumerate(nn) for j in row}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cxr", default="../shared/data/cxr")
    ap.add_argument("--originals", type=int, default=60)
    ap.add_argument("--cache", default=None, help="features.npz to reuse")
    ap.add_argument("--show", type=int, default=5, help="hardest negatives printed")
    args = ap.parse_args()
    root = Path(args.cxr)
    with (root / "manifest.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    paths = [r["file"] for r in rows]
    at = {p: i for i, p in enumerate(paths)}
    table = image_features(root, paths, cache=args.cache, workers=1)
    hashes = hash_files(root, paths)
    with (root / "near_duplicates.csv").open(newline="") as f:
        listed = [(at[r["file_a"]], at[r["file_b"]]) for r in csv.DictReader(f)]
    with UNLISTED.open(newline="") as f:
        listed += [(at[r["file_a"]], at[r["file_b"]]) for r in csv.DictReader(f)]
    truth = closure(len(paths), listed)
    by_patient: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_patient.setdefault(r["patient_id"], []).append(i)
    negs = {(a, b) for g in by_patient.values() for x, a in enumerate(g) for b in g[x + 1:]}
    negs |= look_alikes(root, paths)
    negs = sorted(negs - truth)
    rng = np.random.default_rng(0)
    eligible = singletons(hashes, range(len(paths)))
    originals = sorted(rng.choice(eligible, args.originals, replace=False).tolist())
    copies, edits, of = [], [], []
    for i in originals:
        for e, c in zip(CALIBRATION_EDITS, make_copies(load_image(root / paths[i]).pixels, rng,
                                                       CALIBRATION_EDITS), strict=True):
            copies.append(features_of(c))
            edits.append(e)
            of.append(i)
    edits_arr = np.array(edits)
    print(f"{len(copies)} copies of {len(originals)} films, {len(negs)} negative pairs, "
          f"{len(truth)} listed real pairs")
    for name, fit in FITS.items():
        t0 = time.perf_counter()
        pos = np.array([(v.inliers, v.agreement) for v in
                        (verify_pair(table[i], c, fit) for i, c in zip(of, copies, strict=True))])
        neg = np.array([(v.inliers, v.agreement) for v in
                        (verify_pair(table[a], table[b], fit) for a, b in negs)])
        real = np.array([(v.inliers, v.agreement) for v in
                         (verify_pair(table[a], table[b], fit) for a, b in sorted(truth))])
        dt = time.perf_counter() - t0
        rule = choose_rule((pos[:, 0], pos[:, 1]), (neg[:, 0], neg[:, 1]))
        hit = rule.passes(pos[:, 0], pos[:, 1])
        fp = rule.passes(neg[:, 0], neg[:, 1])
        print(f"\n## {name}: {rule.describe()} ({dt:.0f} s for {len(pos) + len(neg) + len(real)} pairs)")
        print(f"recall {hit.mean():.3f}, false alarms {fp.sum()}/{len(neg)}, precision at 0.01 "
              f"{precision_at(hit.mean(), fp.mean(), 0.01):.4f}; real pairs "
              f"{rule.passes(real[:, 0], real[:, 1]).sum()}/{len(real)}")
        print("per edit: " + ", ".join(f"{e} {hit[edits_arr == e].mean():.2f}" for e in dict.fromkeys(edits)))
        worst = np.argsort(-(neg[:, 1] + (neg[:, 0] >= rule.min_inliers)))[:args.show]
        print("hardest negatives (inliers, agreement):\n" + "\n".join(
            f"  {int(neg[w, 0])}/{neg[w, 1]:.3f} {paths[negs[w][0]]},{paths[negs[w][1]]}" for w in worst))
        print("positives' lowest agreement per edit at >= 20 inliers: " + ", ".join(
            f"{e} {np.percentile(pos[(edits_arr == e) & (pos[:, 0] >= 20), 1], 5):.3f}"
            for e in dict.fromkeys(edits) if ((edits_arr == e) & (pos[:, 0] >= 20)).any()))
        miss = [(edits[x], int(pos[x, 0]), round(float(pos[x, 1]), 3)) for x in np.flatnonzero(~hit)]
        print(f"missed copies (edit, inliers, agreement): {miss[:20]}")
        p7 = verify_pair(table[at[PNEUMONIA_7[0]]], table[at[PNEUMONIA_7[1]]], fit)
        print(f"pneumonia-7 pair: {p7.inliers} inliers, agreement {p7.agreement:.3f}, "
              f"copy: {bool(rule.passes(p7.inliers, p7.agreement))}")


if __name__ == "__main__":
    main()
