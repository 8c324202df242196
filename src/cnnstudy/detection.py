"""Out-of-distribution detection: how well a confidence score tells test digits (the positive
class) from outliers: AUROC, FPR at 95% TPR, ROC points, for the max softmax probability
and the MC-dropout predictive entropy.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from cnnstudy.queries import ModelQueries, entropy

TPR_LEVEL = 0.95
SCORES = {"msp": "max softmax probability", "mc_entropy": "MC-dropout predictive entropy (negated)"}


def _scores(in_scores: Sequence[float], out_scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    pos = np.asarray(in_scores, dtype=np.float64).ravel()
    neg = np.asarray(out_scores, dtype=np.float64).ravel()
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("need at least one in-distribution and one outlier score")
    if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(neg))):
        raise ValueError("scores must be finite")
    return pos, neg


def auroc(in_scores: Sequence[float], out_scores: Sequence[float]) -> float:
    """Area under the ROC curve; in-distribution is the positive class (higher score = more in)."""
    from sklearn.metrics import roc_auc_score

    pos, neg = _scores(in_scores, out_scores)
    labels = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    return float(roc_auc_score(labels, np.concatenate([pos, neg])))


def fpr_at_tpr(in_scores: Sequence[float], out_scores: Sequence[float], level: float = TPR_LEVEL) -> float:
    """The smallest false-positive rate among thresholds whose true-positive rate is >= `level`.

    A threshold t accepts score >= t as in-distribution. TPR and FPR only fall as t
    rises, so the answer is at the highest t that still keeps `level` of the
    positives: the k-th highest positive score, k = ceil(level * n_pos). Every
    outlier scoring at least that is a false positive (ties count against the
    detector, as they must: no threshold separates tied scores).
    """
    pos, neg = _scores(in_scores, out_scores)
    if not 0.0 < level <= 1.0:
        raise ValueError(f"TPR level must be in (0, 1], got {level}")
    # round() first: e.g. 0.55 * 100 is 55.00000000000001 in binary floating point, which ceil() makes 56.
    k = max(1, math.ceil(round(level * len(pos), 9)))
    threshold = np.sort(pos)[::-1][k - 1]
    return float(np.mean(neg >= threshold))


def fpr_at_95_tpr(in_scores: Sequence[float], out_scores: Sequence[float]) -> float:
    return fpr_at_tpr(in_scores, out_scores, 0.95)


def roc_points(in_scores: Sequence[float], out_scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.metrics import roc_curve

    pos, neg = _scores(in_scores, out_scores)
    labels = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    fpr, tpr, _ = roc_curve(labels, np.concatenate([pos, neg]))
    return fpr, tpr


def detection_scores(queries: ModelQueries) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Score name -> (in-distribution scores, outlier scores); higher means more in-distribution."""
    return {
        "msp": (queries.inference_in.max(axis=1), queries.inference_out.max(axis=1)),
        "mc_entropy": (-entropy(queries.mc_in.mean(axis=0)), -entropy(queries.mc_out.mean(axis=0))),
    }


def detection_metrics(queries: ModelQueries) -> dict:
    """Per score: AUROC, FPR95, the means, and threshold95 (the score that keeps 95% of the test
    digits; `cnnstudy predict` flags an image whose max softmax probability is below msp's)."""
    from cnnstudy.ood_stats import threshold_at_tpr

    result = {}
    for score, (pos, neg) in detection_scores(queries).items():
        result[score] = {"auroc": auroc(pos, neg), "fpr95": fpr_at_95_tpr(pos, neg),
                         "threshold95": threshold_at_tpr(pos, TPR_LEVEL),
                         "mean_in": float(np.mean(pos)), "mean_out": float(np.mean(neg))}
    return result
