"""The websocket worker's WSGI application, for any project that has DJANGO_SETTINGS_MODULE set:

    gunicorn -k realtime.worker.WebSocketWorker --worker-connections 10000 realtime.wsgi:application
"""

from .server.application import get_websocket_application

application = get_websocket_application()
