"""EduPulse on real data: dropout (withdrawal) prediction on the Open University dataset.

    .venv/bin/python benchmarks/oulad.py --train DIR --test DIR --week K --out scores.csv

Trains on every registration of --train (at many prediction weeks), then scores each
registration of --test still registered at day 7K, from --test data dated before day
7K only, and writes ``code_module,code_presentation,id_student,risk``. When --test has
outcomes (final_result), it also prints ROC-AUC and PR-AUC of EduPulse and of the
baselines (logistic regression, gradient-boosted trees, the ABC indicator rule) fitted
on the same training examples and scored on the same students. See docs/oulad.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from oulad_lib.features import (  # noqa: E402
    KEY,
    SEQ_FEATURES,
    STATIC_CAT_FEATURES,
    STATIC_NUM_FEATURES,
    OuladFeatureBuilder,
    Vocabulary,
    build_arrays,
    eligible_mask,
    load_tables,
    training_pairs,
)

from ml.baselines import (  # noqa: E402
    BASELINE_NAMES,
    FittedBaseline,
    IndicatorRule,
    fit_baseline,
    score_metrics,
)
from ml.config import ModelConfig, TrainConfig  # noqa: E402
from ml.data import SequenceArrays  # noqa: E402
from ml.model import batched_forward  # noqa: E402
from ml.train import TrainResult, train_model  # noqa: E402

# The ABC rule read through OULAD's eyes: a week "attended" is a week with any VLE
# activity; a failing course is a cumulative score under the OU pass mark (40%) or any
# assessment not handed in. OULAD records no behaviour incidents.
OULAD_INDICATOR_RULE = IndicatorRule(
    attendance_features=("vle_active_days",),
    attendance_mode="any",
    incident_features=(),
    serious_incident_features=(),
    grade_features=("cum_weighted_score",),
    failure_count_features=("due_missing",),
    grade_fail=0.40,
    grade_watch=0.50,
    grade_max=1.0,
)


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--train", required=True, type=Path, help="OULAD-layout folder to train on")
    p.add_argument("--test", required=True, type=Path, help="OULAD-layout folder to score")
    p.add_argument("--week", required=True, type=int, help="prediction week K (cutoff day 7K)")
    p.add_argument("--out", required=True, type=Path, help="CSV of risk scores to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=12, help="maximum epochs per ensemble member")
    p.add_argument("--members", type=int, default=3, help="ensemble size (seeds)")
    p.add_argument(
        "--train-weeks",
        default="2-20",
        help="prediction weeks to build training examples at, e.g. 2-20 or 2,4,8 (K is added)",
    )
    p.add_argument(
        "--max-train-examples",
        type=int,
        default=40_000,
        help="cap on (registration, week) training examples, sampled evenly; bounds run time",
    )
    p.add_argument("--hidden-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument(
        "--split",
        choices=("registration", "module"),
        default="registration",
        help="what each scoring member holds out for early stopping and calibration; with\n"
        "'module' the scoring members also serve as the stack's fold models (half the time)",
    )
    p.add_argument(
        "--no-stack",
        action="store_true",
        help="score with the network alone, not combined with logistic regression",
    )
    p.add_argument("--no-baselines", action="store_true", help="skip fitting the baselines")
    return p.parse_args(argv)


def _weeks(spec: str, week: int) -> list[int]:
    weeks: set[int] = set()
    for part in spec.split(","):
        if "-" in part:
            low, high = (int(v) for v in part.split("-"))
            weeks.update(range(low, high + 1))
        elif part.strip():
            weeks.add(int(part))
    weeks.add(week)
    return sorted(w for w in weeks if w >= 1)


def _category_dropout(static_cat: np.ndarray, rate: float, seed: int) -> np.ndarray:
    # Test data may hold modules, regions or bands training never saw; they map to the
    # "unknown" index 0, which only learns something if training shows it sometimes.
    rng = np.random.default_rng(seed)
    out = static_cat.copy()
    out[rng.random(out.shape) < rate] = 0
    return out


def _modality_dropout(
    arrays: SequenceArrays, rate: float, seed: int, *, statics: bool = False
) -> None:
    """Blank the whole VLE block, or the whole assessment block, of some training students.

    Whole sources go missing in real data (three of the nine 2013 presentations have a
    VLE log; a module may set no assessment for weeks). Per-value dropout never shows the
    model such a pattern, and a network meeting an unseen mask pattern can answer anything.
    """
    rng = np.random.default_rng(seed + 7)
    groups = [
        [i for i, name in enumerate(SEQ_FEATURES) if "vle" in name],
        [
            i
            for i, name in enumerate(SEQ_FEATURES)
            if name.startswith(("submitted", "due", "cum_", "rank_cum"))
        ],
    ]
    for columns in groups:
        drop = np.flatnonzero(rng.random(len(arrays)) < rate)
        arrays.seq[np.ix_(drop, np.arange(arrays.seq.shape[1]), np.asarray(columns))] = np.nan
        if statics:
            # The now_* statics repeat the last step of a weekly feature: a student
            # whose source is missing has them missing too.
            names = {SEQ_FEATURES[c] for c in columns}
            repeated = [i for i, name in enumerate(STATIC_NUM_FEATURES) if name[4:] in names]
            arrays.static_num[np.ix_(drop, np.asarray(repeated))] = np.nan
    has_vle = STATIC_NUM_FEATURES.index("has_vle")
    vle_seen = ~np.isnan(arrays.seq[:, :, SEQ_FEATURES.index("vle_clicks_log")]).all(axis=1)
    arrays.static_num[:, has_vle] = np.where(vle_seen, arrays.static_num[:, has_vle], 0.0)


def _to_sequence_arrays(arrays: dict, index: np.ndarray | None = None) -> SequenceArrays:
    sel = slice(None) if index is None else index
    labels = arrays["labels"][sel]
    return SequenceArrays(
        seq=arrays["seq"][sel],
        lengths=arrays["lengths"][sel],
        static_num=arrays["static_num"][sel],
        static_cat=arrays["static_cat"][sel],
        labels=None if np.isnan(labels).all() else labels,
    )


MODULE_COLUMN = STATIC_CAT_FEATURES.index("code_module")


def module_holdouts(modules: np.ndarray, members: int, seed: int) -> list[np.ndarray] | None:
    """The module codes each member leaves out of training (None: fewer than 2 modules).

    Modules are dealt round-robin after a seeded shuffle, so every module is left out by
    at least one member and, with as many members as modules, by exactly one.
    """
    codes = np.unique(modules[modules > 0])
    if len(codes) < 2:
        return None
    codes = np.random.default_rng(seed).permutation(codes)
    groups = min(members, len(codes))
    return [np.sort(codes[member % groups :: groups]) for member in range(members)]


def _mask_modules(static_cat: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Code every module outside ``known`` as unknown (0), as for a module never seen."""
    out = static_cat.copy()
    out[~np.isin(out[:, MODULE_COLUMN], known), MODULE_COLUMN] = 0
    return out


def _member_split(
    reg_ids: np.ndarray, seed: int, val_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    # Split by registration, not by example: one student's weeks are near-duplicates, so
    # letting them straddle the split would make early stopping trust memorisation.
    rng = np.random.default_rng(seed)
    unique = np.unique(reg_ids)
    val_regs = rng.choice(unique, size=max(1, int(len(unique) * val_fraction)), replace=False)
    is_val = np.isin(reg_ids, val_regs)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


@dataclass
class EnsembleSettings:
    """Model and training settings of the OULAD ensemble (CLI flags override a few)."""

    members: int = 3
    epochs: int = 12
    seed: int = 0
    hidden_size: int = 32
    fusion_hidden: int = 32
    # Heavy regularisation and a small network: the signal is weak (validation ROC-AUC
    # around 0.72) and the test presentations differ from the training ones, so
    # capacity buys overfitting, not accuracy (measured: docs/oulad.md).
    dropout: float = 0.3
    lr: float = 1e-3
    weight_decay: float = 1e-2
    batch_size: int = 256
    # Validation PR-AUC is noisy on a few hundred positives; a short patience stops
    # some members after one epoch.
    patience: int = 5
    # Early stopping on validation log-loss: smoother than PR-AUC on a few hundred
    # positives (which let one member stop after its second epoch and another run
    # all twelve), and never before the third epoch.
    stop_metric: str = "loss"
    min_epochs: int = 3
    # Wide-and-deep: a linear term over statics and the last/mean week, which
    # extrapolates like logistic regression to modules unlike the training ones.
    linear_skip: bool = True
    # Modality dropout also blanks the now_* statics that repeat the dropped block,
    # as they are blank for a student whose source is really missing.
    consistent_modality: bool = True
    cat_dropout: float = 0.3
    feature_dropout: float = 0.05
    modality_dropout: float = 0.2
    val_fraction: float = 0.15
    # What each member holds out for early stopping and calibration. "registration": a
    # random val_fraction of registrations (the scoring members). "module": whole
    # modules (module_holdouts), coded unknown, as a module the model never saw: the
    # fold models whose out-of-fold predictions fit the stack (fit_stack).
    split: str = "registration"


def train_ensemble(
    arrays: dict,
    reg_ids: np.ndarray,
    cardinalities: list[int],
    settings: EnsembleSettings,
) -> list[TrainResult]:
    """Train ``settings.members`` models, each on its own registration split and seed."""
    results = []
    model_config = ModelConfig(
        n_seq_features=len(SEQ_FEATURES),
        n_static_numeric=len(STATIC_NUM_FEATURES),
        static_cat_cardinalities=tuple(cardinalities),
        hidden_size=settings.hidden_size,
        attention_heads=4,
        dropout=settings.dropout,
        static_embed_dim=4,
        fusion_hidden=settings.fusion_hidden,
        linear_skip=settings.linear_skip,
    )
    modules = arrays["static_cat"][:, MODULE_COLUMN]
    holdouts = module_holdouts(modules, settings.members, settings.seed)
    if settings.split != "module":
        holdouts = None
    for member in range(settings.members):
        seed = settings.seed * 1000 + member
        started = time.perf_counter()
        known: np.ndarray | None = None
        if holdouts is None:
            train_idx, val_idx = _member_split(reg_ids, seed, settings.val_fraction)
        else:
            is_val = np.isin(modules, holdouts[member])
            train_idx, val_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)
            known = np.unique(modules[train_idx])
        train_part = _to_sequence_arrays(arrays, train_idx)
        train_part.static_cat = _category_dropout(train_part.static_cat, settings.cat_dropout, seed)
        _modality_dropout(
            train_part, settings.modality_dropout, seed, statics=settings.consistent_modality
        )
        val_part = _to_sequence_arrays(arrays, val_idx)
        if known is not None:
            val_part.static_cat = _mask_modules(val_part.static_cat, known)
        train_config = TrainConfig(
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            lr=settings.lr,
            weight_decay=settings.weight_decay,
            early_stopping_patience=settings.patience,
            early_stopping_metric=settings.stop_metric,
            min_epochs=settings.min_epochs,
            seed=seed,
            # Examples are already cut at their prediction week, and the label depends on
            # that cut: truncating further would pair a label with the wrong horizon.
            truncation_prob=0.0,
            feature_dropout_prob=settings.feature_dropout,
            pos_weight=None,
            device="cpu",
            deterministic=False,
        )
        result = train_model(model_config, train_config, train_part, val_part)
        # Which rows validated this member (its out-of-fold rows) and which modules it
        # was trained on (any other module is scored as unknown).
        result.extra["val_index"] = val_idx
        result.extra["known_modules"] = known
        results.append(result)
        best = result.history[result.best_epoch]
        print(
            f"  member {member}: seed {seed}, {len(result.history)} epochs, best epoch "
            f"{result.best_epoch} (val ROC-AUC {best['val_roc_auc']:.4f}, PR-AUC "
            f"{best['val_pr_auc']:.4f}), {time.perf_counter() - started:.1f}s",
            flush=True,
        )
    return results


def member_logits(results: list[TrainResult], arrays: SequenceArrays) -> np.ndarray:
    """[members, N] calibrated logits; modules a member never trained on read as unknown."""
    out = []
    for result in results:
        known = result.extra.get("known_modules")
        part = arrays
        if known is not None:
            part = copy.copy(arrays)
            part.static_cat = _mask_modules(arrays.static_cat, known)
        logits, _ = batched_forward(result.model, result.normalizer.transform(part))
        model = result.model
        out.append(logits.astype(np.float64) / float(model.temperature) + float(model.logit_bias))
    return np.stack(out)


def score_ensemble(results: list[TrainResult], arrays: SequenceArrays) -> np.ndarray:
    """Mean of the members' calibrated probabilities."""
    return np.mean(_sigmoid(member_logits(results, arrays)), axis=0)


def out_of_fold_logits(results: list[TrainResult], arrays: dict) -> np.ndarray | None:
    """Each training row's calibrated logit from the member that left its module out.

    None unless the members split by module and every row was left out by one of them.
    """
    if any(r.extra.get("known_modules") is None for r in results):
        return None
    oof = np.full(len(arrays["labels"]), np.nan)
    for result in results:
        idx = result.extra["val_index"]
        if not np.isnan(oof[idx]).all():
            continue  # more members than modules: the first member's answer stands
        oof[idx] = member_logits([result], _to_sequence_arrays(arrays, idx))[0]
    return None if np.isnan(oof).any() else oof


def _subset(arrays: dict, index: np.ndarray) -> dict:
    return {
        key: arrays[key][index] for key in ("seq", "lengths", "static_num", "static_cat", "labels")
    }


@dataclass
class Stack:
    """EduPulse's network and a logistic regression on the same arrays, combined.

    The combination (one weight each and a bias) is fitted on out-of-fold logits whose
    folds are whole modules, so it says how far to trust each model on a module it has
    not seen: the situation of the test presentations that bring a new module.
    """

    logistic: FittedBaseline
    weights: np.ndarray  # [network, logistic]
    bias: float

    def predict(self, network_proba: np.ndarray, arrays: SequenceArrays) -> np.ndarray:
        z = np.stack([_logit(network_proba), _logit(self.logistic.predict(arrays))], axis=1)
        return _sigmoid(z @ self.weights + self.bias)


def fit_stack(arrays: dict, results: list[TrainResult], seed: int) -> Stack | None:
    """Fit the logistic regression and the combination; None without module folds."""
    oof_network = out_of_fold_logits(results, arrays)
    if oof_network is None:
        return None
    oof_logistic = np.full(len(oof_network), np.nan)
    for result in results:
        idx = result.extra["val_index"]
        if not np.isnan(oof_logistic[idx]).all():
            continue
        rest = np.setdiff1d(np.arange(len(oof_network)), idx)
        fold = fit_baseline(
            "logistic", _subset(arrays, rest), SEQ_FEATURES, static_num_names=STATIC_NUM_FEATURES
        )
        held = _subset(arrays, idx)
        held["static_cat"] = _mask_modules(held["static_cat"], result.extra["known_modules"])
        oof_logistic[idx] = _logit(fold.predict(held))
    combiner = LogisticRegression(C=1e4, max_iter=1000)
    combiner.fit(np.stack([oof_network, oof_logistic], axis=1), arrays["labels"])
    logistic = fit_baseline(
        "logistic", arrays, SEQ_FEATURES, static_num_names=STATIC_NUM_FEATURES, seed=seed
    )
    return Stack(
        logistic=logistic,
        weights=combiner.coef_[0].astype(np.float64),
        bias=float(combiner.intercept_[0]),
    )


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def main(argv: list[str] | None = None) -> dict:
    args = _parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads", flush=True)

    train_tables = load_tables(args.train)
    if not train_tables.has_outcomes:
        raise SystemExit(f"{args.train}: --train needs final_result outcomes to learn from")
    test_tables = load_tables(args.test)
    weeks = _weeks(args.train_weeks, args.week)
    vocab = Vocabulary.fit(train_tables.regs)
    train_builder = OuladFeatureBuilder(train_tables, max(weeks))
    reg_ids, week_ids, labels = training_pairs(train_tables.regs, weeks)
    if len(reg_ids) > args.max_train_examples:
        # Even thinning keeps every week and the class balance in proportion.
        rng = np.random.default_rng(args.seed)
        keep = np.sort(rng.choice(len(reg_ids), size=args.max_train_examples, replace=False))
        reg_ids, week_ids, labels = reg_ids[keep], week_ids[keep], labels[keep]
    train_arrays = build_arrays(train_builder, vocab, reg_ids, week_ids, labels)

    test_idx = np.flatnonzero(eligible_mask(test_tables.regs, args.week))
    test_labels = None
    if test_tables.has_outcomes:
        outcome = test_tables.regs["final_result"].iloc[test_idx]
        # A blank outcome stays unknown (NaN) and is left out of the metrics.
        test_labels = np.where(outcome.isna(), np.nan, outcome == "Withdrawn").astype(np.float32)
    test_builder = OuladFeatureBuilder(test_tables, args.week)
    test_arrays = build_arrays(
        test_builder, vocab, test_idx, np.full(len(test_idx), args.week), test_labels
    )
    t_features = time.perf_counter() - t0
    print(
        f"features: {len(reg_ids)} training examples ({len(np.unique(reg_ids))} registrations,"
        f" weeks {weeks[0]}-{weeks[-1]}, {labels.mean():.1%} withdraw later), "
        f"{len(test_idx)} test registrations at week {args.week}; {t_features:.1f}s",
        flush=True,
    )

    t1 = time.perf_counter()
    settings = EnsembleSettings(
        members=args.members,
        epochs=args.epochs,
        seed=args.seed,
        hidden_size=args.hidden_size,
        split=args.split,
    )
    results = train_ensemble(train_arrays, reg_ids, vocab.cardinalities(), settings)
    t_train = time.perf_counter() - t1
    stack = None
    if not args.no_stack:
        folds = results
        if settings.split != "module":
            # Standard stacking: the combination is fitted on out-of-fold predictions of
            # models that never saw the row's module, then applied to members trained on
            # every module. Members trained on two thirds of the modules score seen
            # modules worse (measured: docs/oulad.md), so they only serve the fit.
            print("leave-module-out fold models for the stack:", flush=True)
            folds = train_ensemble(
                train_arrays, reg_ids, vocab.cardinalities(), replace(settings, split="module")
            )
        stack = fit_stack(train_arrays, folds, args.seed)
    if stack is not None:
        print(
            f"stack: {stack.weights[0]:.3f} x network + {stack.weights[1]:.3f} x logistic "
            f"{stack.bias:+.3f} (logits; fitted on leave-module-out predictions)"
        )
    elif not args.no_stack:
        print("stack: needs two or more training modules; network alone")
    t_stack = time.perf_counter() - t1 - t_train
    t2 = time.perf_counter()
    scored = _to_sequence_arrays(test_arrays)
    risk = score_ensemble(results, scored)
    if stack is not None:
        risk = stack.predict(risk, scored)
    t_score = time.perf_counter() - t2
    print(
        f"EduPulse: trained {args.members} members in {t_train:.1f}s, the stack in "
        f"{t_stack:.1f}s, scored in {t_score:.2f}s"
    )

    out = test_tables.regs.iloc[test_idx][KEY].copy()
    out["risk"] = np.round(risk, 6)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.out, index=False)
    print(f"wrote {len(out)} scores to {args.out}")

    report: dict = {
        "week": args.week,
        "n_test": len(test_idx),
        "n_train_examples": len(reg_ids),
        "stack": None if stack is None else {"weights": stack.weights.tolist(), "bias": stack.bias},
        "seconds": {
            "features": t_features,
            "train": t_train,
            "stack": t_stack,
            "score": t_score,
        },
    }
    known = test_labels[~np.isnan(test_labels)] if test_labels is not None else np.zeros(0)
    if test_labels is not None and 0 < known.sum() < len(known):
        metrics = {"edupulse": score_metrics(test_labels, risk)}
        if not args.no_baselines:
            t3 = time.perf_counter()
            for name in BASELINE_NAMES:
                if name == "logistic" and stack is not None:
                    # The same fit on the same arrays as the baseline's: reuse it.
                    metrics[name] = score_metrics(test_labels, stack.logistic.predict(test_arrays))
                    continue
                fitted = fit_baseline(
                    name,
                    train_arrays,
                    SEQ_FEATURES,
                    static_num_names=STATIC_NUM_FEATURES,
                    rule=OULAD_INDICATOR_RULE,
                    seed=args.seed,
                )
                metrics[name] = score_metrics(test_labels, fitted.predict(test_arrays))
            report["seconds"]["baselines"] = time.perf_counter() - t3
        report["positives"] = float(known.mean())
        report["metrics"] = metrics
        print(
            f"\nweek {args.week}: {len(known)} students with outcomes, {known.mean():.1%} withdrew"
        )
        print(f"{'model':<12} {'ROC-AUC':>8} {'PR-AUC':>8} {'Brier':>8}")
        for name, m in metrics.items():
            print(f"{name:<12} {m['roc_auc']:>8.4f} {m['pr_auc']:>8.4f} {m['brier']:>8.4f}")
    report["seconds"]["total"] = time.perf_counter() - t0
    print(f"total {report['seconds']['total']:.1f}s")
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
