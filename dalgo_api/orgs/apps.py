from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "dalgo_api.orgs"
    label = "orgs"
    verbose_name = "Organizations, memberships, invitations and feature flags"
