"""The chat's tasks (Django's Tasks framework), run by `manage.py db_worker`."""

from . import retention

try:
    from django.tasks import task  # Django 6.0 and later
except ImportError:
    from django_tasks import task  # the backport, on Django 5.2

RUN_SECONDS = 30  # one run deletes for about this long at most: the task worker's other tasks come between


@task()
def prune_messages():
    """Retention (chat/retention.py). Periodic (PERIODIC_TASKS); what one run could not delete in its
    time is left to a run queued right behind it. Returns how many messages it deleted."""
    deleted, done = retention.prune(RUN_SECONDS)
    if not done:
        prune_messages.enqueue()
    return deleted
