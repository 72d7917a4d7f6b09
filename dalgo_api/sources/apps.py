from django.apps import AppConfig


class SourcesConfig(AppConfig):
    name = "dalgo_api.sources"
    label = "sources"
    verbose_name = "Connector catalog and sources"
