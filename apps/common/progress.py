"""Progress of a Celery task, for GET /api/v1/tasks/{id}.

Apps whose tasks have their own progress record (an ImportJob, a scoring
run) register a provider here from their AppConfig.ready(); common never
imports them. A provider returns None when the task is not one of its own,
or when the user may not see it.
"""

from collections.abc import Callable
from typing import Any

from apps.accounts.models import User

TaskProgressProvider = Callable[[str, User], dict[str, Any] | None]
_providers: list[TaskProgressProvider] = []


def register_task_progress(provider: TaskProgressProvider) -> None:
    if provider not in _providers:
        _providers.append(provider)


def task_progress(task_id: str, user: User) -> dict[str, Any] | None:
    for provider in _providers:
        found = provider(task_id, user)
        if found is not None:
            return found
    return None
