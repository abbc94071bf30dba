import os

from django.core.wsgi import get_wsgi_application

from apps.common.startup import startup_objects_freeze

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edupulse.settings.local")
application = get_wsgi_application()
startup_objects_freeze()
