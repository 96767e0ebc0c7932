"""The site's own pages: signing up (Django's UserCreationForm), so that a newcomer can open rooms
and start jobs without an administrator."""

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme


def signup(request):
    """GET: the form; POST: create the account, log in, and go where the user was going."""
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
        next_url = settings.LOGIN_REDIRECT_URL
    if request.user.is_authenticated:
        return redirect(next_url)
    form = UserCreationForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        login(request, form.save(), backend="django.contrib.auth.backends.ModelBackend")
        return redirect(next_url)
    status = 400 if form.is_bound else 200
    return render(request, "registration/signup.html", {"form": form, "next": next_url}, status=status)
