from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class ModelConfig:
    n_seq_features: int
    n_static_numeric: int = 0
    static_cat_cardinalities: tuple[int, ...] = ()
    hidden_size: int = 64
    gru_layers: int = 1
    attention_heads: int = 4
    dropout: float = 0.1
    static_embed_dim: int = 8
    bidirectional: bool = False
    fusion_hidden: int = 64
    # "Wide and deep" (Cheng et al. 2016): a linear term over the static numerics and
    # each student's last and mean standardised week is added to the logit. It
    # extrapolates like logistic regression where inputs leave the training range (a
    # school or module unlike any seen), while the GRU/attention path models the
    # trajectory. Off by default; checkpoints without it load unchanged.
    linear_skip: bool = False

    def __post_init__(self) -> None:
        self.static_cat_cardinalities = tuple(int(c) for c in self.static_cat_cardinalities)
        if self.n_seq_features < 1:
            raise ValueError("n_seq_features must be >= 1")
        if self.hidden_size < 1 or self.gru_layers < 1:
            raise ValueError("hidden_size and gru_layers must be >= 1")
        if any(c < 1 for c in self.static_cat_cardinalities):
            raise ValueError("every categorical cardinality must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        if self.state_size % self.attention_heads != 0:
            raise ValueError(
                f"attention_heads ({self.attention_heads}) must divide the GRU state size "
                f"({self.state_size})"
            )

    @property
    def state_size(self) -> int:
        return self.hidden_size * (2 if self.bidirectional else 1)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["static_cat_cardinalities"] = list(self.static_cat_cardinalities)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return cls(**_known(cls, data))


EARLY_STOPPING_METRICS = ("pr_auc", "roc_auc", "loss")


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 256
    grad_accum_steps: int = 1
    lr: float = 2e-3
    weight_decay: float = 1e-4
    # "cosine" = linear warmup then cosine decay; "onecycle" = torch OneCycleLR;
    # "constant" = warmup then flat.
    schedule: str = "cosine"
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    early_stopping_patience: int = 5
    # What picks the best epoch and stops training: "pr_auc" (validation average
    # precision, the default: the positive class is rare), "roc_auc", or
    # "loss" (validation log-loss, lower is better; smoother than either AUC on a
    # few hundred positives, so it stops less by chance).
    early_stopping_metric: str = "pr_auc"
    # Never stop before this many epochs: with a warmup schedule the first epochs
    # are noisy, and a lucky first epoch would otherwise end the run.
    min_epochs: int = 1
    seed: int = 0
    deterministic: bool = True
    # AMP only applies on CUDA: CPU autocast (bf16) is slower than fp32 for GRUs.
    # float16 (+ GradScaler) is the default because cuDNN's GRU kernels support it
    # everywhere; "bfloat16" needs no scaler where the GPU and cuDNN support it.
    amp: bool = True
    amp_dtype: str = "float16"
    device: str | None = "auto"
    num_workers: int = 0
    # "auto" = n_negative / n_positive of the training labels; a number; or None.
    pos_weight: float | str | None = "auto"
    # Random truncation cuts a student's history to an earlier week and keeps the
    # label. That is only right when the label does not depend on the prediction
    # week (an end-of-year outcome). EduPulse's label is "drops out within the
    # horizon *after* the prediction week": a student cut back to week 5 who left in
    # week 8 is a positive at week 5 but was labelled from week 10, and a student
    # who left in week 4 would be a (wrong) positive with a history that ends before
    # leaving. Such labels teach the model the wrong horizon, so truncation is off
    # unless asked for; build examples at several prediction weeks instead.
    truncation_prob: float = 0.0
    min_weeks: int = 2
    feature_dropout_prob: float = 0.05
    # Training-only augmentations, off by default. Category dropout replaces each
    # static categorical value by "unknown" with this probability, so the unknown
    # embedding learns the average student (a region or school added after training
    # maps there). Feature-group dropout blanks a whole group of weekly features
    # (columns listed in feature_groups, e.g. every attendance column) for a whole
    # student with this probability: real data lose whole sources (a school that
    # records no discipline, a term with no grades yet), a pattern that per-value
    # feature dropout never shows the model.
    cat_dropout_prob: float = 0.0
    feature_groups: tuple[tuple[int, ...], ...] = ()
    feature_group_dropout_prob: float = 0.0
    target_recall: float = 0.8
    # The "watch" tier catches more students than "high"; None = halfway to 1.0.
    watch_recall: float | None = None
    eval_batch_size: int = 2048
    # Standardised inputs are clipped to +-this many standard deviations (None = off).
    normalize_clip: float | None = 10.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.grad_accum_steps < 1:
            raise ValueError("epochs, batch_size and grad_accum_steps must be >= 1")
        if self.schedule not in {"cosine", "onecycle", "constant"}:
            raise ValueError(f"unknown schedule {self.schedule!r}")
        if self.amp_dtype not in {"float16", "bfloat16"}:
            raise ValueError("amp_dtype must be 'float16' or 'bfloat16'")
        if isinstance(self.pos_weight, str) and self.pos_weight != "auto":
            raise ValueError("pos_weight must be 'auto', a number or None")
        if not 0.0 < self.target_recall <= 1.0:
            raise ValueError("target_recall must be in (0, 1]")
        if self.early_stopping_metric not in EARLY_STOPPING_METRICS:
            raise ValueError(
                f"early_stopping_metric must be one of {EARLY_STOPPING_METRICS}, "
                f"not {self.early_stopping_metric!r}"
            )
        if self.min_epochs < 0:
            raise ValueError("min_epochs must be >= 0")
        probabilities = (
            "truncation_prob",
            "feature_dropout_prob",
            "cat_dropout_prob",
            "feature_group_dropout_prob",
        )
        for name in probabilities:
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1)")
        # JSON (checkpoint metadata) turns tuples into lists; keep one canonical form.
        self.feature_groups = tuple(tuple(int(c) for c in g) for g in self.feature_groups)

    @property
    def resolved_watch_recall(self) -> float:
        if self.watch_recall is not None:
            return self.watch_recall
        return self.target_recall + (1.0 - self.target_recall) / 2.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return cls(**_known(cls, data))


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    # Checkpoints written by a newer version may carry extra keys; ignoring them
    # keeps old code able to load a config instead of failing on a typo-free file.
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}
