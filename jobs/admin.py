from django.contrib import admin

from .models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "state", "progress", "detail", "created", "updated"]
    list_filter = ["state"]
