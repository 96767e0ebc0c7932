from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .forms import StartJobForm
from .models import Job
from .services import start_job


def index(request, form=None, status=200):
    context = {"form": form or StartJobForm(), "jobs": Job.objects.recent()}
    return render(request, "jobs/index.html", context, status=status)


@require_POST
def start(request):
    """Start a job (CSRF-protected like every POST) and go back to the page, which shows it live."""
    form = StartJobForm(request.POST)
    if not form.is_valid():
        return index(request, form, status=400)
    start_job(form.cleaned_data["steps"], fail=form.cleaned_data["fail"])
    return redirect("jobs:index")
