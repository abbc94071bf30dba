import os

from django.core.asgi import get_asgi_application

from apps.common.startup import startup_objects_freeze

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edupulse.settings.local")
application = get_asgi_application()
startup_objects_freeze()
