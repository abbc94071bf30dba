from edupulse.settings.base import *  # noqa: F403
from edupulse.settings.base import env

DEBUG = env.flag("DJANGO_DEBUG", True)
