from django.contrib import admin
from django.http import HttpRequest

from dalgo_api.audit.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the log is written by the API alone."""

    list_display = ("at", "org_slug", "actor_email", "action", "target", "status")
    list_filter = ("org_slug",)
    search_fields = ("actor_email", "action", "target")

    def has_add_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False
