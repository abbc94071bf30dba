import os

# One torch (OpenMP) thread per web process, set before anything imports torch.
# A single prediction's forward pass is far too small to split between cores,
# and torch's default of one thread per core in each of `workers` processes
# makes their spinning OpenMP threads fight each other and the request
# threads: the API's tail latency grows with every worker (docs/api.md,
# "Serving and speed"). Celery workers set their own (EDUPULSE_TORCH_THREADS).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from django.core.wsgi import get_wsgi_application  # noqa: E402

from apps.common.startup import startup_objects_freeze  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edupulse.settings.local")
application = get_wsgi_application()
startup_objects_freeze()
