"""The portal's web server settings: ``gunicorn portal.wsgi`` reads this file from the working directory.

The portal's requests are short and CPU-bound (Python under the GIL), so processes, not threads, carry
the load, and synchronous workers take each request from one shared queue: whichever process is free
answers next. Threads in one process queue behind each other's GIL slices, and keep-alive connections
pinned to one busy process wait while another idles; both stretch the slow tail (measured in
``make bench``, docs/benchmarks.md). One process more than there are cores covers the few requests that
wait on I/O. As gunicorn advises for synchronous workers, put a buffering reverse proxy (nginx, a cloud
load balancer) in front in production.
"""

import os

bind = os.environ.get("PORTAL_BIND", f"127.0.0.1:{os.environ.get('PORTAL_PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY") or (os.cpu_count() or 1) + 1)
worker_class = "sync"
timeout = int(os.environ.get("PORTAL_WEB_TIMEOUT") or 60)
graceful_timeout = 20
accesslog = os.environ.get("PORTAL_ACCESS_LOG") or None
