"""The feature set: one row per version of the running code's definition."""

from __future__ import annotations

from apps.features.definition import Definition, current_definition
from apps.features.exceptions import FeatureSetConflict
from apps.features.models import FeatureSet


def feature_set_ensure(*, definition: Definition | None = None) -> FeatureSet:
    """The FeatureSet row of a definition (the running code's by default), created once."""
    definition = definition or current_definition()
    feature_set, _created = FeatureSet.objects.get_or_create(
        version=definition.version,
        defaults={
            "code_version": definition.code_version,
            "params": definition.params,
            "columns": definition.columns,
            "fingerprint": definition.fingerprint,
        },
    )
    if feature_set.fingerprint != definition.fingerprint:
        raise FeatureSetConflict(
            f"Feature set {definition.version!r} is stored with another definition "
            f"(columns, parameters or extractor code changed); bump FEATURE_VERSION."
        )
    return feature_set
