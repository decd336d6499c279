"""Local-feature geometry shared by near-duplicates and patient retrieval: ORB features,
pairwise verification (RANSAC bounded affine, aligned agreement), shared landmarks, and the
worker pool that runs them on every core."""

from core.facade import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "SIDE": "features",
    "features_of": "features",
    "image_features": "features",
    "normalise": "features",
    "LandmarkVerifier": "landmarks",
    "landmarks_of": "landmarks",
    "shared_landmarks": "landmarks",
    "agreement": "verify",
    "affine_ok": "verify",
    "fit_similarity": "verify",
    "fit_transform": "verify",
    "match_points": "verify",
    "thumb_matrix": "verify",
    "verify_many": "verify",
    "verify_pair": "verify",
})

__all__ = [
    "SIDE",
    "features_of",
    "image_features",
    "normalise",
    "LandmarkVerifier",
    "landmarks_of",
    "shared_landmarks",
    "agreement",
    "affine_ok",
    "fit_similarity",
    "fit_transform",
    "match_points",
    "thumb_matrix",
    "verify_many",
    "verify_pair",
]
