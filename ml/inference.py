from __future__ import annotations

import copy
import warnings
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from ml.calibration import apply_calibration
from ml.checkpoint import LoadedModel
from ml.data import SequenceArrays
from ml.device import select_device
from ml.model import EduPulseModel, batched_forward

__all__ = ["Scorer", "select_device"]


class Scorer:
    """Batched, no-grad scoring of raw (un-normalised) arrays with a loaded model."""

    def __init__(self, loaded: LoadedModel, device: str | torch.device | None = "auto") -> None:
        self.loaded = loaded
        self.device = device if isinstance(device, torch.device) else select_device(device)
        self.model: EduPulseModel = loaded.model.to(self.device).eval()
        self.quantized = False

    @property
    def feature_columns(self) -> list[str]:
        return self.loaded.feature_columns

    def _check(self, arrays: SequenceArrays) -> None:
        cfg = self.loaded.model_config
        if arrays.n_features != cfg.n_seq_features:
            raise ValueError(
                f"model expects {cfg.n_seq_features} weekly features, got {arrays.n_features}"
            )
        if arrays.static_num.shape[1] != cfg.n_static_numeric:
            raise ValueError(f"model expects {cfg.n_static_numeric} static numeric columns")
        if arrays.static_cat.shape[1] != len(cfg.static_cat_cardinalities):
            raise ValueError(
                f"model expects {len(cfg.static_cat_cardinalities)} static categorical columns"
            )

    def logits(
        self, arrays: SequenceArrays, batch_size: int = 2048, with_attention: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        self._check(arrays)
        data = self.loaded.normalizer.transform(arrays)
        return batched_forward(self.model, data, batch_size, self.device, with_attention)

    def score(self, arrays: SequenceArrays, batch_size: int = 2048) -> np.ndarray:
        """Calibrated dropout probabilities, float64 [N]."""
        logits, _ = self.logits(arrays, batch_size)
        return self._calibrate(logits)

    def score_with_attention(
        self, arrays: SequenceArrays, batch_size: int = 2048
    ) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities [N], attention pooling weights over weeks [N, T])."""
        logits, attention = self.logits(arrays, batch_size, with_attention=True)
        assert attention is not None
        return self._calibrate(logits), attention

    def _calibrate(self, logits: np.ndarray) -> np.ndarray:
        model = self.loaded.model
        return apply_calibration(logits, float(model.temperature), float(model.logit_bias))

    def risk_levels(self, probs: np.ndarray) -> list[str]:
        if self.loaded.thresholds is None:
            raise ValueError("this checkpoint has no thresholds")
        return [self.loaded.thresholds.level(float(p)) for p in probs]

    def quantize_dynamic_int8(self) -> Scorer:
        """A CPU scorer with int8 weights in the GRU and Linear layers.

        Activations stay float and are quantised on the fly, so no calibration
        data is needed; attention's fused projections stay float.
        """
        model = copy.deepcopy(self.loaded.model).cpu().eval()
        with warnings.catch_warnings():
            # torch.ao.quantization is deprecated in favour of torchao, which is not
            # a dependency; the eager API still works in torch 2.x.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            from torch.ao.quantization import quantize_dynamic

            qmodel = quantize_dynamic(model, {nn.Linear, nn.GRU}, dtype=torch.qint8)
        scorer = Scorer.__new__(Scorer)
        scorer.loaded = replace(self.loaded, model=model)
        scorer.device = torch.device("cpu")
        scorer.model = qmodel
        scorer.quantized = True
        return scorer
