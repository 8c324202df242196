"""OOD statistics on synthetic scores whose answer is known, and exact logits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from cnnstudy import ood_stats as O
from cnnstudy import detection
from cnnstudy.queries import ModelQueries


def gaussian_scores(shift: float, n_in: int, n_out: int, seed: int):
    """In ~ N(shift, 1), out ~ N(0, 1): the true AUROC is Phi(shift / sqrt 2)."""
    rng = np.random.default_rng(seed)
    return rng.normal(shift, 1.0, n_in), rng.normal(0.0, 1.0, n_out)


def test_rank_auroc_equals_sklearn_with_ties():
    rng = np.random.default_rng(3)
    pos, neg = np.round(rng.normal(0.5, 1, 300), 1), np.round(rng.normal(0, 1, 40), 1)
    expected = roc_auc_score(np.r_[np.ones(300), np.zeros(40)], np.r_[pos, neg])
    assert O.auroc_fast(pos, neg) == pytest.approx(expected, abs=1e-12)
    assert O.auroc_fast(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.5


def test_pair_counting_bootstrap_gives_the_ranks_values_exactly(monkeypatch):
    rng = np.random.default_rng(5)
    pos, neg = np.round(rng.normal(0.5, 1, 300), 1), np.round(rng.normal(0, 1, 23), 1)  # rounded: ties
    idx_in, idx_out = O._resample(rng, len(pos), len(neg), 600)
    counted = O._bootstrap_aurocs(pos, neg, idx_in, idx_out, chunk=250)  # chunks of 250, 250, 100
    monkeypatch.setattr(O, "PAIR_TABLE_LIMIT", 0)  # what many outliers get: ranks
    ranked = O._bootstrap_aurocs(pos, neg, idx_in, idx_out, chunk=250)
    assert counted.shape == (600,) and np.array_equal(counted, ranked)
    assert counted.std() > 0.01  # the replicates differ: each row used its own draws
    first = roc_auc_score(np.r_[np.ones(300), np.zeros(23)], np.r_[pos[idx_in[0]], neg[idx_out[0]]])
    assert counted[0] == pytest.approx(first, abs=1e-12)


def test_interval_covers_the_truth_about_95_percent_of_the_time():
    truth = norm.cdf(1.0 / math.sqrt(2))  # 0.760
    covered = 0
    trials = 60
    for t in range(trials):
        interval = O.auroc_interval(*gaussian_scores(1.0, 300, 23, seed=t), seed=t, rounds=400)
        assert interval.low <= interval.estimate <= interval.high
        covered += interval.low <= truth <= interval.high
    assert 0.85 <= covered / trials <= 1.0  # nominal 95%; 60 trials: binomial sd ~2.8 points


def test_interval_narrows_with_more_outliers_and_is_seeded():
    few = O.auroc_interval(*gaussian_scores(1.0, 1000, 23, seed=0), seed=5)
    many = O.auroc_interval(*gaussian_scores(1.0, 1000, 1000, seed=0), seed=5)
    assert (many.high - many.low) < 0.5 * (few.high - few.low)
    assert O.auroc_interval(*gaussian_scores(1.0, 1000, 23, seed=0), seed=5) == few
    assert O.auroc_interval(*gaussian_scores(1.0, 1000, 23, seed=0), seed=6) != few


def test_paired_difference_sees_a_real_gap_and_not_a_fake_one():
    rng = np.random.default_rng(1)
    latent_in, latent_out = rng.normal(1.5, 1, 500), rng.normal(0, 1, 40)
    # b is a: a's scores plus noise (a strictly better detector on the same images).
    strong = (latent_in, latent_out)
    weak = (latent_in + rng.normal(0, 1.5, 500), latent_out + rng.normal(0, 1.5, 40))
    result = O.paired_difference(strong, weak, seed=0, names=("strong", "weak"))
    assert result.difference.estimate > 0 and result.beyond_noise and result.p_value < 0.05
    assert "strong separates better" in result.sentence() and "more than noise" in result.sentence()
    # Two detectors that differ only by a monotone transform rank images identically.
    same = O.paired_difference(strong, (np.exp(latent_in), np.exp(latent_out)), seed=0)
    assert same.difference.estimate == 0 and same.difference.low == 0 == same.difference.high
    assert not same.beyond_noise and same.p_value == 1.0
    # Two independent noisy copies of the same quality: within the noise (most seeds).
    c1 = (latent_in + rng.normal(0, 1, 500), latent_out + rng.normal(0, 1, 40))
    c2 = (latent_in + rng.normal(0, 1, 500), latent_out + rng.normal(0, 1, 40))
    assert not O.paired_difference(c1, c2, seed=0).beyond_noise
    with pytest.raises(ValueError, match="same images"):
        O.paired_difference(strong, (latent_in[:10], latent_out), seed=0)


def test_threshold_at_tpr_agrees_with_outliers_fpr():
    pos, neg = gaussian_scores(1.0, 200, 30, seed=2)
    threshold = O.threshold_at_tpr(pos, 0.95)
    assert np.mean(pos >= threshold) >= 0.95
    assert np.mean(pos > threshold) < 0.95  # the highest such threshold
    assert np.mean(neg >= threshold) == detection.fpr_at_95_tpr(pos, neg)


def test_energy_and_ensemble():
    logits = np.array([[10.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    np.testing.assert_allclose(O.negative_energy(logits), [10 + math.log(1 + 2 * math.exp(-10)), 1 + math.log(3)])
    # The reason energy needs logits: log-probabilities give logsumexp 0 everywhere.
    log_p = logits - O.negative_energy(logits)[:, None]
    np.testing.assert_allclose(O.negative_energy(log_p), 0.0, atol=1e-12)
    a = np.array([[0.9, 0.1], [0.5, 0.5]])
    b = np.array([[0.1, 0.9], [0.5, 0.5]])
    np.testing.assert_allclose(O.ensemble_probabilities([a, b]), [[0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_allclose(O.msp(a), [0.9, 0.5])


def test_detector_table_names_the_best():
    rng = np.random.default_rng(4)
    pos, neg = rng.normal(2, 1, 400), rng.normal(0, 1, 30)
    detectors = {"msp": (pos + rng.normal(0, 2, 400), neg + rng.normal(0, 2, 30)),
                 "energy": (pos, neg)}
    table = O.detector_table(detectors, reference="msp", seed=0, rounds=500)
    assert table["best"]["detector"] == "energy" and table["best"]["runner_up"] == "msp"
    assert table["detectors"]["energy"]["vs_reference"]["beyond_noise"]
    assert table["detectors"]["energy"]["auroc"]["estimate"] == pytest.approx(O.auroc_fast(pos, neg))
    with pytest.raises(ValueError, match="reference detector"):
        O.detector_table(detectors, reference="mc", seed=0)


def test_exact_logits_of_a_softmax_model(digits, tiny):
    from cnnstudy import runtime

    runtime.select_device("cpu")
    from cnnstudy.evaluation import predict_proba
    from cnnstudy.models import build_cnn

    model = build_cnn(tiny)
    images, _ = digits
    z = O.logits(model, images[:20])
    p = np.exp(z - O.negative_energy(z)[:, None])
    np.testing.assert_allclose(p, predict_proba(model, images[:20]), rtol=1e-5, atol=1e-6)
    from cnnstudy.standard_models import build_standard

    lenet = build_standard("lenet5")
    np.testing.assert_allclose(np.exp(O.logits(lenet, images[:5]) - O.negative_energy(O.logits(lenet, images[:5]))[:, None]),
                               predict_proba(lenet, images[:5]), rtol=1e-5, atol=1e-6)


def test_study_detectors_and_markdown():
    from cnnstudy.ood_report import detector_markdown

    rng = np.random.default_rng(7)

    def queries(name, sharp):
        """Digits confident (peaked), outliers flat; `sharp` sets how well they separate."""
        def probs(n, peak):
            logits = rng.normal(0, 1, (n, 10))
            logits[:, 0] += peak
            e = np.exp(logits - logits.max(1, keepdims=True))
            return e / e.sum(1, keepdims=True)
        inf_in, inf_out = probs(200, sharp), probs(25, 0.5)
        return ModelQueries(name=name, dropout=0.25, inference_out=inf_out, inference_in=inf_in,
                                     repeats_out=inf_out[None], mc_out=inf_out[None], mc_in=inf_in[None])

    qs = {"baseline": queries("baseline", 3.0), "wide": queries("wide", 6.0)}
    energies = {"baseline": (rng.normal(3, 1, 200), rng.normal(0, 1, 25))}
    detectors = O.study_detectors(qs, energies)
    assert sorted(detectors) == ["baseline/energy", "baseline/mc_entropy", "baseline/msp", "ensemble/msp",
                                 "wide/mc_entropy", "wide/msp"]
    expected = O.msp((qs["baseline"].inference_out + qs["wide"].inference_out) / 2)
    np.testing.assert_allclose(detectors["ensemble/msp"][1], expected)
    table = O.detector_table(detectors, reference="baseline/msp", seed=0, rounds=300)
    text = detector_markdown(table, outliers=25, in_distribution=200)
    assert "| detector | AUROC [95% interval] |" in text
    assert text.count("\n| ") == 1 + len(detectors)  # header + one row per detector
    assert f"Best: **{table['best']['detector']}**" in text
    best_row = next(line for line in text.splitlines() if line.startswith(f"| {table['best']['detector']} |"))
    assert f"{table['detectors'][table['best']['detector']]['auroc']['estimate']:.3f} [" in best_row
