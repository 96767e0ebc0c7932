from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .channels import ALL_JOBS_TOPIC, user_jobs_topic
from .forms import StartJobForm
from .models import Job
from .services import JobRefused, start_job


def watched(user):
    """(the topic of the jobs `user` sees, those jobs): staff everyone's, a user their own, a guest none."""
    if user.is_staff:
        return ALL_JOBS_TOPIC, Job.objects.all()
    if user.is_authenticated:
        return user_jobs_topic(user.pk), Job.objects.filter(owner=user)
    return None, Job.objects.none()


def index(request, form=None, error=None, status=200):
    topic, jobs = watched(request.user)
    context = {"form": form or StartJobForm(), "jobs": jobs.recent(), "jobs_topic": topic, "error": error}
    return render(request, "jobs/index.html", context, status=status)


@require_POST
def start(request):
    """Start a job (logged in; CSRF-protected like every POST) and go back to the page, which shows it live.

    Refused, with the page and the reason: anonymous (403), too many unfinished jobs of this user
    (429), the queue full (503). Nothing is created then.
    """
    form = StartJobForm(request.POST)
    if not request.user.is_authenticated:
        return index(request, form, "Log in to start a job (and to see yours).", status=403)
    if not form.is_valid():
        return index(request, form, status=400)
    try:
        start_job(request.user, form.cleaned_data["steps"], fail=form.cleaned_data["fail"])
    except JobRefused as refusal:
        return index(request, form, refusal.message, status=refusal.status)
    return redirect("jobs:index")
