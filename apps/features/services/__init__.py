"""Writes of the feature store: the feature set, full and incremental builds."""

from apps.features.services.builds import (
    BuildSummary,
    features_build,
    features_build_all,
    features_refresh,
)
from apps.features.services.feature_sets import feature_set_ensure

__all__ = [
    "BuildSummary",
    "feature_set_ensure",
    "features_build",
    "features_build_all",
    "features_refresh",
]
