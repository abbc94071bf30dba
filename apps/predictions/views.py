"""The counselor's alerts: the in-app notifications of apps.predictions.services.alerts."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.dashboards.views import staff_page
from apps.predictions.selectors import notifications_for
from apps.predictions.sentences import factor_sentences


@staff_page
def notifications_view(request: HttpRequest) -> HttpResponse:
    page = Paginator(notifications_for(request.user), 50).get_page(request.GET.get("page"))
    rows = [
        {
            "notification": n,
            "reasons": factor_sentences(n.prediction.factors or [])[:1],
        }
        for n in page.object_list
    ]
    return render(
        request,
        "predictions/notifications.html",
        {"page": page, "rows": rows, "nav": "notifications"},
    )


@staff_page
@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    notifications_for(request.user).filter(read_at__isnull=True).update(read_at=timezone.now())
    return redirect("predictions:notifications")
