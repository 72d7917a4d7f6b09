from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "dalgo_api.audit"
    label = "audit"
    verbose_name = "Audit log of every change made through the API"
