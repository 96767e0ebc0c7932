"""Two WSGI applications.

- `application`: the pages (manage.py runserver, or gunicorn with deploy/gunicorn_http.py).
- `websocket`: the WebSocket views of WEBSOCKET_URLCONF, for the gevent worker:
  `gunicorn -c deploy/gunicorn_ws.py project.wsgi:websocket`.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

application = get_wsgi_application()

from realtime.server.application import get_websocket_application  # noqa: E402  (needs settings)

websocket = get_websocket_application()
