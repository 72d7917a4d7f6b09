"""Django admin for organizations, memberships, invitations and feature flags.

Creating or deleting an organization here does not write its spec: use the API or
``manage.py createorganduser`` so the spec and the Dagster workspace follow.
"""

from django.contrib import admin

from dalgo_api.orgs.models import FeatureFlag, Invitation, Org, OrgUser


class OrgUserInline(admin.TabularInline):
    model = OrgUser
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Org)
class OrgAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "created_at")
    search_fields = ("slug", "name")
    readonly_fields = ("slug",)
    inlines = [OrgUserInline]


@admin.register(OrgUser)
class OrgUserAdmin(admin.ModelAdmin):
    list_display = ("user", "org", "role", "created_at")
    list_filter = ("role", "org")
    search_fields = ("user__email", "org__slug")


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ("email", "org", "role", "invited_by", "sent_at")
    exclude = ("token_hash",)


@admin.register(FeatureFlag)
class FeatureFlagAdmin(admin.ModelAdmin):
    list_display = ("name", "org", "enabled")
    list_filter = ("name", "enabled")
