"""The outliers stage's aggregate: every model's answers on the outliers and the test split
(cnnstudy.queries), summarised per image, per setting and per model (cnnstudy.detection).

Three settings, as named in every output: (a) the same model in inference mode; (b) the
same model with MC dropout; (c) different models trained on the same data (the variants
and the baseline re-trained with other seeds by the retrain stage).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cnnstudy.detection import SCORES, detection_metrics, detection_scores, roc_points
from cnnstudy.image_prep import OutlierImage
from cnnstudy.queries import ModelQueries, entropy, max_abs_difference, mc_spread, model_agreement, top_k

ACCURATE = 0.9       # setting (c) also reports the models at least this accurate on the test split
# Bootstrap resamples per AUROC interval and paired difference: ~0.5 s each here for 1,200 + 23
# scores, so the ~40 detectors of the default study cost about a minute.
BOOTSTRAP_ROUNDS = 1000
REFERENCE_DETECTOR = "msp"

INFERENCE, MC_DROPOUT, MODELS = "inference", "mc_dropout", "models"
SETTINGS = (INFERENCE, MC_DROPOUT, MODELS)
SETTING_TITLES = {
    INFERENCE: "(a) same model, inference mode",
    MC_DROPOUT: "(b) same model, MC dropout",
    MODELS: "(c) different models, same data",
}


@dataclass
class Study:
    images: list[OutlierImage]
    skipped: list[tuple[str, str]]
    class_names: tuple[str, ...]
    queries: dict[str, ModelQueries]      # every model, variants first, then the seed re-trainings
    variants: list[str]                   # models of params.models
    seed_models: dict[str, int]           # re-trained baseline name -> seed
    repeats: int
    mc_seed: int
    reference: str = "baseline"
    timings: dict = field(default_factory=dict)
    items: str = "digits"                 # what the in-distribution images are (registry.items_of)

    # -------------------------------------------------------------- per image
    def per_image(self) -> list[dict]:
        """One row per image and setting, the reference model's answers for (a) and (b),
        the mean over all models for (c)."""
        ref = self.queries[self.reference]
        spread = mc_spread(ref.mc_out, ref.inference_out)
        repeat_diff = np.abs(ref.repeats_out - ref.repeats_out[:1]).max(axis=(0, 2))
        predictions = {name: q.inference_out.argmax(1) for name, q in self.queries.items()}
        agree = model_agreement(predictions, self.reference)
        ensemble = np.mean([q.inference_out for q in self.queries.values()], axis=0)
        seeds_agree = model_agreement({n: predictions[n] for n in self._seed_group()}, self.reference)
        rows = []
        for i, image in enumerate(self.images):
            for setting, vector in ((INFERENCE, ref.inference_out[i]), (MC_DROPOUT, ref.mc_out[:, i].mean(0)),
                                    (MODELS, ensemble[i])):
                row = {"image": image.name, "setting": setting, **self._describe(vector)}
                if setting == INFERENCE:
                    row.update(model=self.reference, queries=self.repeats, max_abs_diff=float(repeat_diff[i]))
                elif setting == MC_DROPOUT:
                    row.update(model=self.reference, queries=self.repeats,
                               std_max_prob=float(spread["std_max_prob"][i]),
                               class_changes=int(spread["class_changes"][i]),
                               distinct_classes=int(spread["distinct_classes"][i]),
                               max_abs_diff=float(spread["max_abs_diff"][i]))
                else:
                    votes = [self.class_names[predictions[n][i]] for n in self.queries]
                    row.update(model="mean of all", queries=len(self.queries),
                               reference_class=self.class_names[predictions[self.reference][i]],
                               agreement=float(agree["agreement"][i]),
                               distinct_classes=int(agree["distinct_classes"][i]),
                               seed_agreement=float(seeds_agree["agreement"][i]),
                               votes=" ".join(votes))
                rows.append(row)
        return rows

    def _describe(self, vector: np.ndarray) -> dict:
        top = top_k(vector)
        return {"predicted": self.class_names[top[0][0]], "max_prob": top[0][1],
                "entropy": float(entropy(vector)),
                "top3": ", ".join(f"{self.class_names[c]}: {p:.3f}" for c, p in top)}

    def _seed_group(self) -> list[str]:
        return [self.reference, *self.seed_models]

    # -------------------------------------------------------------- summaries
    def setting_summaries(self) -> dict:
        ref = self.queries[self.reference]
        spread = {name: mc_spread(q.mc_out, q.inference_out) for name, q in self.queries.items()}
        predictions = {name: q.inference_out.argmax(1) for name, q in self.queries.items()}
        test_predictions = {name: q.inference_in.argmax(1) for name, q in self.queries.items()}
        n = len(self.images)

        def agreement_summary(names: list[str]) -> dict:
            group = {k: predictions[k] for k in names}
            agree = model_agreement(group, self.reference)
            test_agree = model_agreement({k: test_predictions[k] for k in names}, self.reference)
            return {
                "models": names,
                "mean_agreement_with_reference": float(agree["agreement"].mean()),
                "images_all_agree": int(np.sum(agree["distinct_classes"] == 1)),
                "mean_distinct_classes": float(agree["distinct_classes"].mean()),
                "max_distinct_classes": int(agree["distinct_classes"].max()),
                "test_mean_agreement_with_reference": float(test_agree["agreement"].mean()),
                "test_images_all_agree_rate": float(np.mean(test_agree["distinct_classes"] == 1)),
            }

        return {
            INFERENCE: {
                "model": self.reference,
                "queries": self.repeats,
                "max_abs_diff": max_abs_difference(ref.repeats_out),
                "identical": bool(max_abs_difference(ref.repeats_out) == 0.0),
                "max_abs_diff_any_model": max(max_abs_difference(q.repeats_out) for q in self.queries.values()),
            },
            MC_DROPOUT: {
                "model": self.reference,
                "queries": self.repeats,
                "seeds": [self.mc_seed + r for r in range(self.repeats)],
                "dropout": ref.dropout,
                "max_abs_diff": max_abs_difference(ref.mc_out),
                "mean_std_max_prob": float(spread[self.reference]["std_max_prob"].mean()),
                "max_std_max_prob": float(spread[self.reference]["std_max_prob"].max()),
                "class_change_rate": float(spread[self.reference]["class_changes"].sum() / (self.repeats * n)),
                "images_with_class_change": int(np.sum(spread[self.reference]["class_changes"] > 0)),
                "per_model": {name: {"dropout": self.queries[name].dropout,
                                     "mean_std_max_prob": float(s["std_max_prob"].mean()),
                                     "class_change_rate": float(s["class_changes"].sum() / (self.repeats * n)),
                                     "images_with_class_change": int(np.sum(s["class_changes"] > 0))}
                              for name, s in spread.items()},
            },
            MODELS: {
                "reference": self.reference,
                "all": agreement_summary(list(self.queries)),
                # A model that is broken on digits (an untrained optimizer, stale BatchNorm
                # statistics) disagrees on everything; this group shows the rest without it.
                "accurate": {**agreement_summary([n for n, q in self.queries.items() if n == self.reference
                                                  or (q.test_accuracy or 0.0) >= ACCURATE]),
                             "min_test_accuracy": ACCURATE},
                "seeds_only": {**agreement_summary(self._seed_group()),
                               "seeds": {name: seed for name, seed in self.seed_models.items()}},
            },
        }

    def detection(self) -> dict:
        result = {}
        for name, q in self.queries.items():
            result[name] = {"test_accuracy": q.test_accuracy, "dropout": q.dropout, **detection_metrics(q)}
            if name in self.seed_models:
                result[name]["retrained_seed"] = self.seed_models[name]
        return result

    def ensembles(self) -> dict[str, list[str]]:
        """Two deep ensembles: the reference and its re-trainings with other seeds (same
        architecture, the classic deep ensemble), and every model at least ACCURATE accurate."""
        accurate = [n for n, q in self.queries.items() if n == self.reference or (q.test_accuracy or 0.0) >= ACCURATE]
        return {"seed_ensemble": self._seed_group(), "accurate_ensemble": accurate}

    def detector_comparison(self, rounds: int = BOOTSTRAP_ROUNDS) -> dict:
        """Every detector (max softmax, MC-dropout entropy, energy per model; the ensembles'
        max softmax) with a bootstrap interval, paired against the reference model's max softmax."""
        from cnnstudy.ood_stats import detector_table, study_detectors

        energies = {n: q.extra["energy"] for n, q in self.queries.items() if "energy" in q.extra}
        detectors = study_detectors(self.queries, energies, ensembles=self.ensembles())
        table = detector_table(detectors, reference=f"{self.reference}/{REFERENCE_DETECTOR}", seed=self.mc_seed,
                               rounds=rounds)
        return {**table, "ensembles": self.ensembles()}

    def roc_curves(self) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
        curves: dict[str, dict] = {score: {} for score in SCORES}
        for name, q in self.queries.items():
            for score, (pos, neg) in detection_scores(q).items():
                curves[score][name] = roc_points(pos, neg)
        return curves

    def metrics(self) -> dict:
        detection = self.detection()
        variants = {name: detection[name] for name in self.variants}
        return {
            "outliers": len(self.images),
            "skipped": [name for name, _ in self.skipped],
            "inverted": sum(image.inverted for image in self.images),
            "in_distribution": {"split": "test", "images": int(len(self.queries[self.reference].inference_in)),
                                "items": self.items},
            "repeats": self.repeats,
            "detection": detection,
            "best": {score: max(variants, key=lambda n: variants[n][score]["auroc"]) for score in SCORES},
            "settings": self.setting_summaries(),
            "ood_stats": self.detector_comparison(),
            "timings_s": {k: round(v, 2) for k, v in self.timings.items()},
        }
