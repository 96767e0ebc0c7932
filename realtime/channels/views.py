"""The page server's side: a logged-in user gets a token for an app or a script (docs/protocol.md, Tokens)."""

from django.http import JsonResponse
from django.views.decorators.http import require_POST

from ..envelope import iso_utc
from .tokens import issue_token


@require_POST
def token(request):
    """POST (CSRF-protected): a token of the session's user, dead once this session logs out. A form
    field `topics` (space-separated; a trailing * matches any rest) limits what it may join."""
    if not request.user.is_authenticated:
        return JsonResponse({"code": "unauthorized", "detail": "Log in first."}, status=403)
    if request.session.session_key is None:
        request.session.save()
    topics = request.POST.get("topics", "").split() or None
    value, expires = issue_token(request.user, session_key=request.session.session_key, topics=topics)
    return JsonResponse({"token": value, "expires": iso_utc(expires),
                         "user": {"id": request.user.pk, "username": request.user.get_username()}})
