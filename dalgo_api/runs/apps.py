from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "dalgo_api.runs"
    label = "runs"
    verbose_name = "Runs and their logs"
