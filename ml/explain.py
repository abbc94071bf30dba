from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from ml.checkpoint import LoadedModel
from ml.data import SequenceArrays
from ml.inference import Scorer


@dataclass
class RiskFactor:
    """One reason behind a score, as plain data; the Django side writes the sentence."""

    feature: str
    direction: Literal["raises", "lowers"]
    # Share of this student's total |attribution| (0..1); factors of one student
    # sum to at most 1, so weights are comparable between students.
    weight: float
    weeks: list[int]  # week indices that drove it, ascending; [] for static features
    value_recent: float | None  # mean over the last `recent_weeks` observed weeks
    value_baseline: float | None  # the student's earlier mean, else the training mean
    attribution: float = 0.0  # signed contribution to the logit (integrated gradients)
    kind: Literal["weekly", "static"] = "weekly"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _integrated_gradients(
    model: torch.nn.Module,
    inputs: tuple[torch.Tensor, ...],
    x_base: torch.Tensor,
    steps: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attributions for the weekly values [B, T, F] and the static numerics [B, S].

    The observation mask is held fixed: explanations are about the values a
    student has, and a missing value has no value to blame.
    """
    x, mask, lengths, static_num, static_cat = inputs
    b = x.shape[0]
    alphas = (torch.arange(steps, dtype=x.dtype, device=x.device) + 0.5) / steps
    a_seq = alphas.view(steps, 1, 1, 1)
    path_x = (x_base + a_seq * (x - x_base)).reshape(steps * b, *x.shape[1:])
    path_s = (alphas.view(steps, 1, 1) * static_num).reshape(steps * b, -1)
    path_x.requires_grad_(True)
    path_s.requires_grad_(True)
    rep = (steps, *([1] * (mask.dim() - 1)))
    logits = model(
        path_x,
        mask.repeat(rep),
        lengths.repeat(steps),
        path_s,
        static_cat.repeat(steps, 1),
    )
    grad_x, grad_s = torch.autograd.grad(logits.sum(), (path_x, path_s))
    avg_x = grad_x.view(steps, *x.shape).mean(0)
    avg_s = grad_s.view(steps, *static_num.shape).mean(0)
    return (x - x_base) * avg_x * mask, static_num * avg_s


def _attention_kernel(device: torch.device) -> AbstractContextManager[object]:
    """On CPU, plain matrix products for attention's forward and backward.

    With a few dozen weeks per student, CPU's flash-attention kernel is slower than
    the plain one: a quarter of an explanation's time (the same attributions up to
    float rounding). Other devices keep their fused kernels.
    """
    if device.type != "cpu":
        return nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(SDPBackend.MATH)


def _mean_or_none(values: np.ndarray) -> float | None:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else None


def explain(
    scorer_or_model: Scorer | LoadedModel,
    arrays: SequenceArrays,
    feature_names: Sequence[str] | None = None,
    top_k: int = 3,
    *,
    static_numeric_names: Sequence[str] | None = None,
    steps: int = 24,
    baseline: Literal["zeros", "own_mean"] = "zeros",
    batch_size: int = 32,
    recent_weeks: int = 4,
    max_weeks: int = 4,
    attention: np.ndarray | None = None,
) -> list[list[RiskFactor]]:
    """Top ``top_k`` risk factors per student, by integrated gradients + attention.

    baseline "zeros" compares the student with an average student (the training
    mean, which is 0 after standardising); "own_mean" compares each week with the
    student's own average, so only changes over time get credit.
    Static numeric columns compete with weekly features when
    ``static_numeric_names`` is given. ``attention`` [N, T] are the students'
    pooling weights when the caller has them (``Scorer.score_with_attention``);
    otherwise one more forward pass computes them.
    """
    scorer = scorer_or_model if isinstance(scorer_or_model, Scorer) else Scorer(scorer_or_model)
    loaded = scorer.loaded
    # Quantised modules have no gradients; the float original explains the same ranking.
    device = torch.device("cpu") if scorer.quantized else scorer.device
    model = loaded.model
    # Moving a model re-flattens the GRU's weights, which races with a forward
    # pass in another thread (a web process's batcher): only move when needed.
    if next(model.parameters()).device != device:
        model = model.to(device)
    if model.training:
        model.eval()
    names = list(feature_names or loaded.feature_columns)
    if len(names) != arrays.n_features:
        raise ValueError(f"{len(names)} feature names for {arrays.n_features} features")
    static_names = list(static_numeric_names or [])
    if static_names and len(static_names) != arrays.static_num.shape[1]:
        raise ValueError("static_numeric_names must name every static numeric column")
    norm = loaded.normalizer
    data = norm.transform(arrays)
    results: list[list[RiskFactor]] = []
    for start in range(0, len(arrays), batch_size):
        sl = slice(start, start + batch_size)
        inputs = (
            torch.from_numpy(data.x[sl]).to(device),
            torch.from_numpy(data.mask[sl].astype(np.float32)).to(device),
            torch.from_numpy(data.lengths[sl]),
            torch.from_numpy(data.static_num[sl]).to(device),
            torch.from_numpy(data.static_cat[sl]).to(device),
        )
        x, mask = inputs[0], inputs[1]
        if baseline == "own_mean":
            own = (x * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp(min=1)
            x_base = own * mask
        else:
            x_base = torch.zeros_like(x)
        # cuDNN's GRU refuses backward in eval mode; the native kernel does not.
        with torch.backends.cudnn.flags(enabled=False), _attention_kernel(device):
            attr_x, attr_s = _integrated_gradients(model, inputs, x_base, steps)
        if attention is None:
            with torch.no_grad():
                weights = model.forward_with_attention(*inputs)[1].float().cpu().numpy()
        else:
            weights = attention[sl]
        results.extend(
            _factors_for_student(
                attr_x[i].detach().cpu().numpy(),
                attr_s[i].detach().cpu().numpy(),
                weights[i],
                arrays.seq[start + i],
                arrays.static_num[start + i],
                int(arrays.lengths[start + i]),
                names,
                static_names,
                norm.seq_mean,
                norm.static_mean,
                top_k,
                recent_weeks,
                max_weeks,
            )
            for i in range(x.shape[0])
        )
    return results


def _factors_for_student(
    attr_x: np.ndarray,
    attr_s: np.ndarray,
    attention: np.ndarray,
    seq: np.ndarray,
    static_num: np.ndarray,
    length: int,
    names: list[str],
    static_names: list[str],
    seq_mean: np.ndarray,
    static_mean: np.ndarray,
    top_k: int,
    recent_weeks: int,
    max_weeks: int,
) -> list[RiskFactor]:
    per_feature = attr_x.sum(0)
    per_static = attr_s if static_names else np.zeros(0)
    total = float(np.abs(per_feature).sum() + np.abs(per_static).sum())
    if total <= 0:
        return []
    # Weekly features first, then statics; the largest |attribution| wins, ties keep
    # that order (a stable sort).
    values = np.concatenate([per_feature.astype(np.float64), per_static.astype(np.float64)])
    top = np.argsort(-np.abs(values), kind="stable")[:top_k]
    n_weekly = len(per_feature)
    valid = max(1, length)
    cut = max(0, valid - recent_weeks)
    factors: list[RiskFactor] = []
    for index in top.tolist():
        value = float(values[index])
        if value == 0.0:
            break
        direction: Literal["raises", "lowers"] = "raises" if value > 0 else "lowers"
        if index >= n_weekly:
            j = index - n_weekly
            factors.append(
                RiskFactor(
                    feature=static_names[j],
                    direction=direction,
                    weight=abs(value) / total,
                    weeks=[],
                    value_recent=_mean_or_none(static_num[j : j + 1].astype(np.float64)),
                    value_baseline=float(static_mean[j]),
                    attribution=value,
                    kind="static",
                )
            )
            continue
        j = index
        column = attr_x[:valid, j]
        # A week counts when it pushed in the same direction as the feature's total;
        # its relevance mixes its share of that push with the model's attention.
        agreeing = np.where(np.sign(column) == np.sign(value), np.abs(column), 0.0)
        share = agreeing / agreeing.sum() if agreeing.sum() > 0 else agreeing
        relevance = np.where(agreeing > 0, 0.5 * share + 0.5 * attention[:valid], 0.0)
        order = [int(t) for t in np.argsort(-relevance, kind="stable") if relevance[t] > 0]
        raw = seq[:valid, j].astype(np.float64)
        earlier = _mean_or_none(raw[:cut])
        factors.append(
            RiskFactor(
                feature=names[j],
                direction=direction,
                weight=abs(value) / total,
                weeks=sorted(order[:max_weeks]),
                value_recent=_mean_or_none(raw[cut:]),
                value_baseline=earlier if earlier is not None else float(seq_mean[j]),
                attribution=value,
            )
        )
    return factors
