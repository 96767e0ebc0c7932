"""The server API: publish, notify, broadcast, presence, history and disconnect over HTTP, for code
that is not this Django project (another service, a cron job, a webhook), with keys made in the admin
or by `manage.py realtime_api_key` (docs/api.md).

An app of its own (`realtime.api` in INSTALLED_APPS, its urls under `realtime/api/`): a project that
wants no HTTP door to its sockets leaves it out. `realtime.api.client` is a client for other
programs: standard library only, no Django.
"""
