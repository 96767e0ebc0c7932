"""API keys: made once and shown once, found by their prefix, checked against a hash of the secret.

A key is `rtk_<prefix>_<secret>`: the prefix (8 hex digits) finds the row, the secret (32 random
bytes, base64url) is checked against its SHA-256 in constant time. A slow password hash buys nothing
for a secret of 256 random bits, and would cost every API call.
"""

import hashlib
import secrets

from django.utils.crypto import constant_time_compare

from .models import ApiKey

KEY_START = "rtk_"


class Refused(Exception):
    """An API call that is not allowed: `status` (401, 403), `code` and `detail` for the caller."""

    def __init__(self, status, code, detail):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def secret_hash(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(row):
    """Give an unsaved ApiKey its prefix and the hash of a new secret; returns the key, to show once."""
    prefix, secret = secrets.token_hex(4), secrets.token_urlsafe(32)
    while ApiKey.objects.filter(prefix=prefix).exists():  # 4 billion prefixes: a retry is rare
        prefix = secrets.token_hex(4)
    row.prefix, row.secret_hash = prefix, secret_hash(secret)
    return f"{KEY_START}{prefix}_{secret}"


def create_key(name, topics, may_disconnect=False):
    """(the saved ApiKey row, the key to show once)."""
    row = ApiKey(name=name, topics=" ".join(topics), may_disconnect=may_disconnect)
    key = new_secret(row)
    row.save()
    return row, key


def authenticate(authorization):
    """The ApiKey an `Authorization: Bearer <key>` header names; Refused when it is missing, wrong or revoked."""
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Refused(401, "unauthorized", "Send the key as 'Authorization: Bearer rtk_...'.")
    prefix, _, secret = key.strip().removeprefix(KEY_START).partition("_")
    row = ApiKey.objects.filter(prefix=prefix).first() if prefix and secret else None
    if row is None or not constant_time_compare(row.secret_hash, secret_hash(secret)):
        raise Refused(401, "unauthorized", "This key is not valid.")
    if row.revoked is not None:
        raise Refused(403, "revoked", "This key was revoked.")
    return row
