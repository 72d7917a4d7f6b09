from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "dalgo_api.tasks"
    label = "tasks"
    verbose_name = "Tasks the frontend polls (connector installs, checks, discovers)"
