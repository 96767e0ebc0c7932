"""Short-lived signed tokens: a socket authenticates as a user without a session cookie.

A token is `django.core.signing` data (salted for this purpose only) naming the user, when it
expires, optionally the topics it may join, and what makes it die early:

- issued to a logged-in session (`POST /realtime/token/`): the id of an IssuedToken row that
  names the session (the session key itself would be readable in the token). Once that session is
  logged out (or flushed, or its password hash no longer matches) the token is `revoked`;
- issued by `manage.py realtime_token`: a digest of the user's session auth hash, so a password
  change revokes it (Django's `get_session_auth_hash`, as for sessions).
"""

import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user, get_user_model
from django.core import signing
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare, salted_hmac

from .. import conf
from .errors import ChannelError

SALT = "realtime.channels.token"
PRUNE_BATCH = 100  # expired rows deleted per issue: the table holds about one max-age of tokens


class InvalidToken(Exception):
    """`reason` (invalid, expired, revoked, unknown_user; for an `auth` frame also another_user and
    too_many_sessions: sockets.py) and what the client is told."""

    def __init__(self, reason, detail):
        super().__init__(detail)
        self.reason, self.detail = reason, detail

    def as_channel_error(self):
        return ChannelError("unauthorized", self.detail, reason=self.reason)


@dataclass(frozen=True)
class TokenIdentity:
    user: object
    topics: list | None  # the topics it may join (a trailing * matches any rest); None: any
    session_key: str | None = None  # the session that issued it (None: the command did)


def issue_token(user, *, session_key=None, topics=None, max_age=None):
    """(token, expiry as an aware datetime) for `user`; with `session_key`, dead once that session is."""
    from ..models import IssuedToken

    max_age = conf.get("WEBSOCKET_TOKEN_MAX_AGE") if max_age is None else max_age
    expires = int(time.time() + max_age)
    payload = {"u": str(user.pk), "x": expires}
    if session_key is not None:
        grant = IssuedToken.objects.create(id=secrets.token_urlsafe(16), user=user, session_key=session_key,
                                           expires=datetime.fromtimestamp(expires, timezone.utc))
        payload["g"] = grant.id
        prune_expired()
    else:
        payload["h"] = auth_digest(user)
    if topics:
        payload["t"] = list(topics)
    return signing.dumps(payload, salt=SALT, compress=True), datetime.fromtimestamp(expires, timezone.utc)


def read_token(token):
    """The TokenIdentity of a valid token (database reads: call it in a reader), else InvalidToken."""
    from ..models import IssuedToken

    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise InvalidToken("invalid", "This token is not valid (damaged, or not issued here).") from None
    if payload["x"] < time.time():
        raise InvalidToken("expired", "This token has expired: get a new one.")
    user = get_user_model()._default_manager.filter(pk=payload["u"]).first()
    if user is None or not user.is_active:
        raise InvalidToken("unknown_user", "This token's user no longer exists or is inactive.")
    if "g" in payload:
        grant = IssuedToken.objects.filter(pk=payload["g"], user=user).first()
        if grant is None or not session_is_users(grant.session_key, user):
            raise InvalidToken("revoked", "The session this token came from was logged out: get a new one.")
        return TokenIdentity(user, payload.get("t"), grant.session_key)
    if not constant_time_compare(payload.get("h", ""), auth_digest(user)):
        raise InvalidToken("revoked", "The user's password changed since this token was issued: get a new one.")
    return TokenIdentity(user, payload.get("t"))


def auth_digest(user):
    """A digest of the user's session auth hash (which changes with the password), not the hash itself."""
    return salted_hmac(SALT, user.get_session_auth_hash()).hexdigest()[:32]


def session_is_users(session_key, user):
    """Whether a session is still logged in as `user`, by Django's own rules (its auth hash too)."""
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return get_user(request).pk == user.pk


def prune_expired():
    from ..models import IssuedToken

    expired = IssuedToken.objects.filter(expires__lt=datetime.now(timezone.utc)).values_list("pk", flat=True)
    IssuedToken.objects.filter(pk__in=list(expired[:PRUNE_BATCH])).delete()
