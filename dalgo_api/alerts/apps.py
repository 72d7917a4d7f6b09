from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "dalgo_api.alerts"
    label = "alerts"
    verbose_name = "Alerts, their deliveries and each member's notification inbox"
