from __future__ import annotations

import numpy as np
import torch


def fit_temperature(
    logits: np.ndarray,
    labels: np.ndarray,
    fit_bias: bool = True,
    initial_bias: float = 0.0,
    max_iter: int = 200,
) -> tuple[float, float]:
    """(temperature T, bias b) minimising the validation log-loss of sigmoid(logit / T + b).

    A positive T and a shared bias cannot reorder students, so AUC and the ranking
    are unchanged; T undoes over-confidence and b the prior shift of pos_weight.
    """
    z = torch.as_tensor(np.asarray(logits, dtype=np.float64)).reshape(-1)
    y = torch.as_tensor(np.asarray(labels, dtype=np.float64)).reshape(-1)
    if z.numel() == 0 or float(y.sum()) in (0.0, float(y.numel())):
        return 1.0, float(initial_bias)
    # Optimise log T so T stays positive without constraints.
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(float(initial_bias), dtype=torch.float64, requires_grad=fit_bias)
    params = [log_t, bias] if fit_bias else [log_t]
    opt = torch.optim.LBFGS(params, lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z / log_t.exp() + bias, y)
        loss.backward()
        return loss

    opt.step(closure)
    temperature = float(np.clip(log_t.exp().item(), 0.05, 20.0))
    return temperature, float(np.clip(bias.item(), -20.0, 20.0))


def apply_calibration(logits: np.ndarray, temperature: float, logit_bias: float) -> np.ndarray:
    """Calibrated probabilities (float64) from raw logits, off the model's device."""
    z = np.asarray(logits, dtype=np.float64) / temperature + logit_bias
    return 1.0 / (1.0 + np.exp(-z))
