"""`make run`: Redis (when installed), Django's runserver, the websocket worker and the task worker.

Pages on HTTP_PORT (8000), WebSockets on WS_PORT (8001). Ctrl-C stops everything started here.
Without redis-server (or with REDIS_URL set) no Redis is started; with neither, the worker
uses its in-process broker, which serves a single worker process.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
import django  # noqa: E402  (after the path and settings above)

django.setup()
from realtime.testing import RedisServer  # noqa: E402  (needs settings)


def main():
    http_port = os.environ.get("HTTP_PORT", "8000")
    ws_port = os.environ.get("WS_PORT", "8001")
    env = dict(os.environ, WEBSOCKET_SERVER=os.environ.get("WEBSOCKET_SERVER", f":{ws_port}"))
    processes = []
    if not env.get("REDIS_URL") and shutil.which("redis-server"):
        redis = RedisServer(port=os.environ.get("REDIS_PORT")).start()
        processes.append(redis.process)
        env["REDIS_URL"] = redis.url
    processes.append(subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{http_port}"], env=env))
    processes.append(subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn_ws.py", "--bind", f"127.0.0.1:{ws_port}",
         "project.wsgi:websocket"], env=env))
    # Jobs (/jobs/) run here. A stable worker id: a restart retries the job a killed worker was running.
    processes.append(subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--worker-id", f"dev-{socket.gethostname()}"[:64],
         "--interval", "0.5"], env=env))
    print(f"\n  Pages:      http://127.0.0.1:{http_port}/\n"
          f"  WebSockets: ws://127.0.0.1:{ws_port}/  (e.g. ws://127.0.0.1:{ws_port}/echo/)\n"
          f"  Tasks:      manage.py db_worker (runs the jobs started on /jobs/)\n"
          f"  Broker:     {env.get('REDIS_URL') or 'in-process (redis-server not installed; one worker only)'}\n"
          f"  Ctrl-C stops everything.\n", flush=True)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        print("a process exited; stopping the others", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
