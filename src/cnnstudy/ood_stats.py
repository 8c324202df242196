"""Out-of-distribution detection measured with its noise: bootstrap intervals, paired
comparisons, and two detectors stronger than max softmax (energy, deep ensemble).

Convention (as in detection.py): in-distribution digits are the positive class and every
score is "higher = more like a digit".

- Interval: stratified bootstrap (in- and out-distribution scores resampled separately,
  each with replacement to its own size), percentile interval. With 23 outliers the
  interval is wide; that is the point.
- Paired comparison: two detectors (or two models) scored on the SAME images; each
  bootstrap replicate resamples the image indices once and computes both AUROCs on
  them, so the interval of the difference carries the pairing. "More than noise"
  = the 95% interval of the difference excludes 0.
- Energy score (Liu et al. 2020): -energy = logsumexp(logits), higher = in. It needs the
  real logits: softmax probabilities fix logits only up to an additive constant, and
  logsumexp(log p) = log(sum p) = 0 for every image, so "energy of the log-probabilities"
  carries no information. The study's models end in Dense(softmax); `logits` recomputes
  that layer's pre-activation exactly (W h + b from the layer's own input h).
- Deep ensemble (Lakshminarayanan et al. 2017): the mean of the models' probability
  vectors; its max probability is the score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy.special import logsumexp
from scipy.stats import rankdata

BOOTSTRAP = 2000
LEVEL = 0.95
TPR_LEVEL = 0.95
# (in, out) score pairs up to which the bootstrap counts pairs instead of ranking (_bootstrap_aurocs).
PAIR_TABLE_LIMIT = 4_000_000


def _check(in_scores, out_scores) -> tuple[np.ndarray, np.ndarray]:
    pos = np.asarray(in_scores, dtype=np.float64).ravel()
    neg = np.asarray(out_scores, dtype=np.float64).ravel()
    if len(pos) < 2 or len(neg) < 2:
        raise ValueError(f"need at least two in-distribution and two outlier scores, got {len(pos)} and {len(neg)}")
    if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(neg))):
        raise ValueError("scores must be finite")
    return pos, neg


def auroc_rows(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """AUROC of each row: P(in > out) + P(tie) / 2 (Mann-Whitney U from mid-ranks), the
    value sklearn's roc_auc_score gives, for (rounds, n_in) and (rounds, n_out) at once."""
    pos, neg = np.atleast_2d(pos), np.atleast_2d(neg)
    ranks = rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    n_in, n_out = pos.shape[1], neg.shape[1]
    return (ranks[:, :n_in].sum(axis=1) - n_in * (n_in + 1) / 2) / (n_in * n_out)


def auroc_fast(pos: np.ndarray, neg: np.ndarray) -> float:
    return float(auroc_rows(pos, neg)[0])


def _bootstrap_aurocs(pos, neg, idx_in, idx_out, chunk: int = 250) -> np.ndarray:
    """The AUROC of each bootstrap replicate (row of idx_in / idx_out).

    Few outliers (the study has 23): count pairs instead of ranking. Replicate b's AUROC is
    sum_ij w_in[b, i] * w_out[b, j] * h(pos_i, neg_j) / (n_in * n_out), with w how often each
    score was drawn and h = 1, 1/2, 0 for in >, =, < out: the Mann-Whitney U of auroc_rows,
    exactly (sums of halves are exact in float64), in one matrix product per chunk. Ranking
    2,000 rows of 1,223 scores took most of the outlier stage's statistics (scipy's rankdata).
    Many outliers: the pair table would be large, so the rows are ranked."""
    n_in, n_out = len(pos), len(neg)
    if n_in * n_out > PAIR_TABLE_LIMIT:
        return np.concatenate([auroc_rows(pos[idx_in[s:s + chunk]], neg[idx_out[s:s + chunk]])
                               for s in range(0, len(idx_in), chunk)])
    wins = (pos[None, :] > neg[:, None]) + 0.5 * (pos[None, :] == neg[:, None])  # (n_out, n_in)
    return np.concatenate([((_draw_counts(idx_out[s:s + chunk], n_out) @ wins)
                            * _draw_counts(idx_in[s:s + chunk], n_in)).sum(axis=1) / (n_in * n_out)
                           for s in range(0, len(idx_in), chunk)])


def _draw_counts(idx: np.ndarray, n: int) -> np.ndarray:
    """(rounds, n): how many times each of n scores was drawn in each row of idx."""
    rounds = len(idx)
    flat = (idx + n * np.arange(rounds)[:, None]).ravel()
    return np.bincount(flat, minlength=rounds * n).reshape(rounds, n).astype(np.float64)


def _resample(rng: np.random.Generator, n_in: int, n_out: int, rounds: int) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (rounds, n_in) and (rounds, n_out): stratified resampling with replacement."""
    return rng.integers(0, n_in, (rounds, n_in)), rng.integers(0, n_out, (rounds, n_out))


def _percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    level: float = LEVEL

    def as_dict(self) -> dict:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "level": self.level}

    def __str__(self) -> str:
        return f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}]"


def auroc_interval(in_scores, out_scores, seed: int, rounds: int = BOOTSTRAP, level: float = LEVEL) -> Interval:
    """AUROC with a stratified percentile-bootstrap interval (seeded: same seed, same interval)."""
    pos, neg = _check(in_scores, out_scores)
    idx_in, idx_out = _resample(np.random.default_rng(seed), len(pos), len(neg), rounds)
    values = _bootstrap_aurocs(pos, neg, idx_in, idx_out)
    return Interval(auroc_fast(pos, neg), *_percentile_interval(values, level), level)


@dataclass(frozen=True)
class PairedDifference:
    """AUROC(a) - AUROC(b) on the same images, with its bootstrap interval."""

    a: str
    b: str
    difference: Interval
    p_value: float        # two-sided bootstrap p: twice the smaller share of replicates on either side of 0

    @property
    def beyond_noise(self) -> bool:
        return self.difference.low > 0 or self.difference.high < 0

    def sentence(self) -> str:
        d = self.difference
        verdict = "more than noise" if self.beyond_noise else "within the noise"
        better = self.a if d.estimate > 0 else self.b
        return (f"{better} separates better by {abs(d.estimate):.3f} AUROC "
                f"(95% interval of {self.a} - {self.b}: [{d.low:+.3f}, {d.high:+.3f}]): {verdict}")

    def as_dict(self) -> dict:
        return {"a": self.a, "b": self.b, **self.difference.as_dict(), "p_value": self.p_value,
                "beyond_noise": self.beyond_noise}


def paired_difference(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], seed: int,
                      names: tuple[str, str] = ("a", "b"), rounds: int = BOOTSTRAP,
                      level: float = LEVEL) -> PairedDifference:
    """Paired bootstrap of AUROC(a) - AUROC(b); a and b are (in scores, out scores) of the
    same images in the same order (two detectors on one model, or one detector on two models)."""
    pos_a, neg_a = _check(*a)
    pos_b, neg_b = _check(*b)
    if pos_a.shape != pos_b.shape or neg_a.shape != neg_b.shape:
        raise ValueError("paired comparison needs scores of the same images: "
                         f"{len(pos_a)}/{len(neg_a)} vs {len(pos_b)}/{len(neg_b)}")
    idx_in, idx_out = _resample(np.random.default_rng(seed), len(pos_a), len(neg_a), rounds)
    diffs = _bootstrap_aurocs(pos_a, neg_a, idx_in, idx_out) - _bootstrap_aurocs(pos_b, neg_b, idx_in, idx_out)
    estimate = auroc_fast(pos_a, neg_a) - auroc_fast(pos_b, neg_b)
    p = min(1.0, 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0)))
    return PairedDifference(names[0], names[1], Interval(estimate, *_percentile_interval(diffs, level), level),
                            float(p))


# ------------------------------------------------------------------ thresholds
def threshold_at_tpr(in_scores, level: float = TPR_LEVEL) -> float:
    """The highest threshold that keeps `level` of the in-distribution scores (score >= t is
    "a digit"): the k-th highest score, k = ceil(level * n), as detection.fpr_at_tpr uses."""
    pos = np.sort(np.asarray(in_scores, dtype=np.float64).ravel())[::-1]
    if len(pos) == 0 or not 0.0 < level <= 1.0:
        raise ValueError(f"need in-distribution scores and a level in (0, 1], got {len(pos)} scores, {level}")
    k = max(1, math.ceil(round(level * len(pos), 9)))
    return float(pos[k - 1])


# ------------------------------------------------------------------ scores
def msp(probabilities: np.ndarray) -> np.ndarray:
    return np.asarray(probabilities, dtype=np.float64).max(axis=-1)


def negative_energy(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """-E(x) = T * logsumexp(logits / T); higher = more in-distribution."""
    z = np.asarray(logits, dtype=np.float64)
    return temperature * logsumexp(z / temperature, axis=-1)


def ensemble_probabilities(per_model: Sequence[np.ndarray]) -> np.ndarray:
    """The deep ensemble's prediction: the mean probability vector over models."""
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in per_model])
    return stacked.mean(axis=0)


def logits(model, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """The exact pre-softmax outputs of a model whose last layer is Dense(softmax) or a
    softmax Activation: the sub-model up to that layer's input, then W h + b."""
    import keras

    from cnnstudy.training import as_model_input

    last = model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    if activation != "softmax":
        raise ValueError(f"model {model.name!r}: the last layer {last.name!r} is not a softmax "
                         f"({type(last).__name__}, activation {activation or 'none'})")
    features = keras.Model(model.inputs, last.input)
    x = as_model_input(np.asarray(images))
    h = np.concatenate([np.asarray(features.predict_on_batch(x[i:i + batch_size]), dtype=np.float64)
                        for i in range(0, len(x), batch_size)])
    if isinstance(last, keras.layers.Dense):
        kernel = np.asarray(keras.ops.convert_to_numpy(last.kernel), dtype=np.float64)
        bias = np.asarray(keras.ops.convert_to_numpy(last.bias), dtype=np.float64) if last.use_bias else 0.0
        return h @ kernel + bias
    return h  # an Activation('softmax') layer: its input are the logits


# ------------------------------------------------------------------ the table
def detector_table(detectors: Mapping[str, tuple[np.ndarray, np.ndarray]], reference: str, seed: int,
                   rounds: int = BOOTSTRAP) -> dict:
    """AUROC with interval for every detector, each compared (paired) with `reference`, and
    the best one compared with the runner-up.

    detectors: name (e.g. "baseline/msp", "ensemble/msp") -> (in scores, out scores) of the
    same in- and out-distribution images.
    """
    if reference not in detectors:
        raise ValueError(f"reference detector {reference!r} is not among {sorted(detectors)}")
    rows = {name: {"auroc": auroc_interval(*scores, seed=seed, rounds=rounds).as_dict(),
                   "fpr95": float(np.mean(scores[1] >= threshold_at_tpr(scores[0]))),
                   "threshold95": threshold_at_tpr(scores[0])}
            for name, scores in detectors.items()}
    for name, scores in detectors.items():
        if name != reference:
            rows[name]["vs_reference"] = paired_difference(scores, detectors[reference], seed=seed,
                                                           names=(name, reference), rounds=rounds).as_dict()
    ranked = sorted(rows, key=lambda n: -rows[n]["auroc"]["estimate"])
    best = {"detector": ranked[0]}
    if len(ranked) > 1:
        versus = paired_difference(detectors[ranked[0]], detectors[ranked[1]], seed=seed,
                                   names=(ranked[0], ranked[1]), rounds=rounds)
        best.update(runner_up=ranked[1], difference=versus.as_dict(), sentence=versus.sentence())
    return {"reference": reference, "bootstrap": {"rounds": rounds, "seed": seed, "level": LEVEL,
                                                  "resampling": "stratified (in and out separately), paired"},
            "detectors": rows, "best": best}


# ------------------------------------------------------------------ from the outlier stage's queries
def study_detectors(queries: Mapping, energies: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
                    ensembles: Mapping[str, Sequence[str]] | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """"<model>/<score>" -> (test-split scores, outlier scores) from queries.ModelQueries:
    msp and MC-dropout entropy for every model, energy where `energies` has the model's
    (from `negative_energy(logits(...))`), and "<name>/msp" for each of `ensembles` (name ->
    member models; default: one "ensemble" of all of them), where it has two members or more."""
    from cnnstudy.detection import detection_scores

    detectors = {}
    for name, q in queries.items():
        for score, pair in detection_scores(q).items():
            detectors[f"{name}/{score}"] = pair
        if energies and name in energies:
            detectors[f"{name}/energy"] = energies[name]
    for ensemble, members in (ensembles if ensembles is not None else {"ensemble": list(queries)}).items():
        if len(members) > 1:
            detectors[f"{ensemble}/msp"] = (
                msp(ensemble_probabilities([queries[n].inference_in for n in members])),
                msp(ensemble_probabilities([queries[n].inference_out for n in members])))
    return detectors
