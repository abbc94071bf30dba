"""gunicorn's settings for the web process; read from the working directory, flags win.

Threaded workers, one per core, four threads each: a request mostly waits on
PostgreSQL and Redis, so four threads keep a core busy, and concurrent
single predictions in one process can share a forward pass (the
micro-batcher). Keep-alive lets API clients reuse their connection.
docs/api.md, "Serving and speed", has the figures behind these numbers.
"""

import os

worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 2)
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
keepalive = 30
