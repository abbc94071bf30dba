from __future__ import annotations

import torch


def select_device(preferred: str | None = "auto") -> torch.device:
    """``None``/"auto": CUDA when available, else CPU. An explicit device must exist."""
    if preferred is None or preferred == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(preferred)
    if device.type == "cuda" and not torch.cuda.is_available():
        # Failing loudly beats silently training for hours on CPU after a driver
        # problem on the GPU host.
        raise RuntimeError(f"device {preferred!r} requested but CUDA is not available")
    return device
