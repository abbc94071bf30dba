from edupulse.settings.base import *  # noqa: F403
from edupulse.settings.base import env

DEBUG = env.flag("DJANGO_DEBUG", True)

# Serve static files from the apps and static/ directly; no collectstatic needed.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
