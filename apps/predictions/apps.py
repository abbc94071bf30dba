from django.apps import AppConfig
from django.conf import settings
from django.utils.translation import gettext_lazy as _


class PredictionsConfig(AppConfig):
    name = "apps.predictions"
    label = "predictions"
    verbose_name = _("Risk models")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.signals import request_finished, request_started

        from apps.common.signals import student_data_changed
        from apps.dashboards.risk import risk_provider_set
        from apps.features.signals import features_updated
        from apps.predictions import risk
        from apps.predictions.receivers import (
            forget_cached_predictions,
            score_after_feature_update,
        )

        student_data_changed.connect(forget_cached_predictions, dispatch_uid="predictions-cache")
        # The pages read real scores whenever a model is active (one query per request).
        risk_provider_set(risk.prediction_risk_source)
        request_started.connect(risk.request_started, dispatch_uid="predictions-risk-start")
        request_finished.connect(risk.request_finished, dispatch_uid="predictions-risk-end")
        features_updated.connect(score_after_feature_update, dispatch_uid="predictions-rescore")
        # Web processes load the model at start so the first request is fast; tests and
        # management commands leave the setting off and load it on first use.
        if settings.EDUPULSE_WARM_MODEL:
            from apps.predictions.loader import active_model_warm

            active_model_warm()
