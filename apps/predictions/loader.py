"""The active model, loaded once per process and kept until another model is promoted.

Loading a checkpoint costs a file read and a model build; scoring one student
costs a millisecond. The cache is keyed by the active ModelVersion (pk and
file), so a promotion is picked up by the next request without a restart.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from apps.predictions.models import ModelStatus, ModelVersion

if TYPE_CHECKING:
    from ml.checkpoint import LoadedModel
    from ml.inference import Scorer


class NoActiveModel(Exception):
    """No model version is active: nothing can be scored yet."""


@dataclass(frozen=True)
class ActiveModel:
    version: ModelVersion
    loaded: LoadedModel
    scorer: Scorer

    @property
    def key(self) -> tuple[int, str]:
        return (self.version.pk, self.version.file_path)


_lock = threading.Lock()
_current: ActiveModel | None = None


def _load(version: ModelVersion) -> ActiveModel:
    from ml.checkpoint import load_checkpoint
    from ml.inference import Scorer

    loaded = load_checkpoint(version.path, expected_feature_version=version.feature_version)
    # Scoring runs next to the web and worker processes: the CPU is the safe default.
    return ActiveModel(version=version, loaded=loaded, scorer=Scorer(loaded, device="cpu"))


def active_model(version: ModelVersion | None = None) -> ActiveModel:
    """The active model (or `version`), loaded at most once per process."""
    global _current
    if version is None:
        version = ModelVersion.objects.filter(status=ModelStatus.ACTIVE).first()
        if version is None:
            raise NoActiveModel("no active model version")
    key = (version.pk, version.file_path)
    current = _current
    if current is not None and current.key == key:
        return current
    with _lock:
        if _current is not None and _current.key == key:
            return _current
        _current = _load(version)
        return _current


def active_model_loaded() -> bool:
    """Whether a model is in memory (the readiness probe asks this)."""
    return _current is not None


def active_model_forget() -> None:
    """Drop the cached model (tests; a promotion in this process)."""
    global _current
    with _lock:
        _current = None


def active_model_warm() -> bool:
    """Load the active model now, if there is one; False when there is none or it fails."""
    try:
        active_model()
    except Exception:  # noqa: BLE001 - warming must never stop the process from starting
        import logging

        logging.getLogger(__name__).exception("could not warm up the active model")
        return False
    return True
