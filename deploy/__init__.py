"""Deployment files: gunicorn configs, the nginx site template and its renderer, systemd units."""
