from edupulse.settings.base import *  # noqa: F403
from edupulse.settings.base import VAR_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Celery runs inline unless a test is about Celery itself (those start a real worker).
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
EDUPULSE_MODEL_DIR = VAR_DIR / "test-models"
LANGUAGE_CODE = "en"

# Serve static files from the apps and static/ directly; no collectstatic needed.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
