"""`manage.py db_worker`: django-tasks-db's task worker, which first settles what it left running,
then keeps a heartbeat per task, sweeps up the tasks of workers that vanished, times tasks, and
keeps periodic tasks scheduled (jobs/worker.py).

Same options as django-tasks-db's command (this one overrides it: `jobs` comes before
`django_tasks_db` in INSTALLED_APPS). Before taking new tasks it retries, or fails, the tasks
its previous life under the same `--worker-id` was running when it died (jobs/recovery.py).
"""

import os

from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from django_tasks_db.management.commands.db_worker import Command as DatabaseWorkerCommand

from jobs.recovery import recover_tasks_left_running
from jobs.worker import Housekeeper


class Command(DatabaseWorkerCommand):
    help = DatabaseWorkerCommand.help + " (first retrying or failing the tasks this worker id left running)"

    def handle(self, *, worker_id, backend_name, reload, batch, **options):
        # With --reload this process only restarts a child that runs the tasks: the child settles.
        housekeeper = None
        if not reload or batch or os.environ.get(DJANGO_AUTORELOAD_ENV) == "true":
            recover_tasks_left_running(worker_id, backend_name)
            housekeeper = Housekeeper(worker_id, backend_name)
            housekeeper.start()
        try:
            super().handle(worker_id=worker_id, backend_name=backend_name, reload=reload, batch=batch, **options)
        finally:
            if housekeeper is not None:
                housekeeper.stop()
