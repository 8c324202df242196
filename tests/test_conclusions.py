"""Conclusions: Holm's correction, Wilson intervals, choice on validation, seed spread, wording."""

import pytest

from cnnstudy.conclusions import chosen_on_validation, headline, holm, observations, seed_spread, wilson


def test_holm_matches_a_worked_example():
    # sorted p 0.01, 0.02, 0.03, 0.04 -> 4*0.01, max(.04, 3*.02), max(.06, 2*.03), max(.06, .04)
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])


def test_holm_caps_at_one_and_keeps_order_monotone():
    # 0.001*3; 0.4*2; the largest p (0.5*1) may not fall below the one before it
    assert holm([0.5, 0.001, 0.4]) == pytest.approx([0.8, 0.003, 0.8])
    assert holm([0.7, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_ten_tests_make_p_0019_not_significant():
    # issue 14: lr_high at p = 0.019 among ten variants
    p = [0.019, 0.087, 0.454, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert holm(p)[0] == pytest.approx(0.19)


def test_wilson_interval_known_values():
    low, high = wilson(0.98, 1000)
    assert low == pytest.approx(0.9693, abs=1e-4) and high == pytest.approx(0.9870, abs=1e-4)
    assert wilson(1.0, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)  # never above 1, unlike the normal interval


def rows():
    base = {"model": "baseline", "change": "—", "test_accuracy": 0.95, "val_accuracy": 0.94, "train_time_s": 10.0,
            "delta_vs_baseline": 0.0, "mcnemar_p": None, "mcnemar_p_holm": None, "significant": False}
    wide = {**base, "model": "wide", "change": "filters=[64]", "test_accuracy": 0.97, "val_accuracy": 0.93,
            "train_time_s": 30.0, "delta_vs_baseline": 2.0, "mcnemar_p": 0.001, "mcnemar_p_holm": 0.002,
            "significant": True}
    drop = {**base, "model": "drop", "change": "dropout=0.4", "test_accuracy": 0.945, "val_accuracy": 0.96,
            "train_time_s": 10.2, "delta_vs_baseline": -0.5, "mcnemar_p": 0.04, "mcnemar_p_holm": 0.08,
            "significant": False}
    same = {**drop, "model": "same", "change": "lr=0.002", "test_accuracy": 0.95, "val_accuracy": 0.90,
            "delta_vs_baseline": 0.0, "mcnemar_p": 1.0, "mcnemar_p_holm": 1.0}
    return [base, wide, drop, same]


def test_choice_is_on_validation_not_test():
    assert chosen_on_validation(rows())["model"] == "drop"  # best val, worse test than wide


def test_headline_names_the_validation_choice_and_no_winner_without_significance():
    table = rows()
    table[1]["significant"] = False
    text = headline(table, None)
    assert "**drop**" in text and "96.00%" in text
    assert "No significant winner" in text and "3 comparisons" in text
    assert "wide" not in text


def test_headline_names_significant_winners_and_seed_range():
    spread = seed_spread(rows()[0], {"baseline_seed1": {"test_accuracy": 0.94, "val_accuracy": 0.93}})
    text = headline(rows(), spread)
    assert "Significantly better than the baseline on test (Holm-corrected): wide." in text
    assert "No significant winner" not in text
    assert "Across 2 seeds the baseline itself scored 94.00%–95.00%" in text


def test_observations_read_as_sentences():
    spread = seed_spread(rows()[0], {"baseline_seed1": {"test_accuracy": 0.944, "val_accuracy": 0.93}})
    wide, drop, same = observations(rows(), spread)
    assert wide.startswith("**wide** (filters=[64]): 97.00% on test, 2.00 points above the baseline's 95.00%")
    assert "a significant difference (McNemar p = 0.001, 0.002 after Holm's correction)" in wide
    assert "outside the baseline's seed range (94.40%–95.00%)" in wide and "3.0× as long" in wide
    assert "0.50 points below" in drop and "not a significant difference" in drop
    assert "within the range the baseline spans across seeds" in drop and "about as long" in drop
    assert "the same as the baseline;" in same and "0.00 points" not in same
    assert not any("helped" in n or "within the noise" in n for n in (wide, drop, same))


def test_seed_spread_absent_without_other_seeds():
    assert seed_spread(rows()[0], {}) is None and seed_spread(rows()[0], None) is None
