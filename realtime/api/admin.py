"""API keys in the admin: a new key is shown once, in the message after saving; revoke with the action."""

from django.contrib import admin, messages
from django.utils import timezone

from .keys import new_secret
from .models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "topics", "may_disconnect", "created", "revoked")
    list_filter = ("may_disconnect", "revoked")
    search_fields = ("name", "prefix", "topics")
    readonly_fields = ("prefix", "created")
    actions = ("revoke",)

    def save_model(self, request, obj, form, change):
        key = None if change else new_secret(obj)
        super().save_model(request, obj, form, change)
        if key is not None:
            self.message_user(request, f"The key of {obj.name!r}, shown only now: {key}", messages.WARNING)

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked__isnull=True).update(revoked=timezone.now())
        self.message_user(request, f"{count} key(s) revoked: they are refused from now on.")
