"""The connector catalog's rows: operators' own connectors per organization, and the connectors'
specifications, read once per version (by a task) and kept here for every API process."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from dalgo_api.orgs.models import Org
from dalgo_core.connectors.catalog import ConnectorDef


class CustomConnector(models.Model):
    """A connector an operator added to an organization's catalog: a PyPI package and its version."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="custom_connectors")
    connector = models.CharField(max_length=100)  # the command the package installs, e.g. source-mycrm
    package = models.CharField(max_length=100)
    version = models.CharField(max_length=40)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    documentation_url = models.URLField(blank=True, default="")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "connector"], name="one_custom_connector_per_name")]

    def __str__(self) -> str:
        return f"{self.connector} ({self.package}=={self.version}) of {self.org.slug}"

    def definition(self) -> ConnectorDef:
        """The connector as the catalog lists it."""
        return ConnectorDef(
            connector=self.connector,
            version=self.version,
            title=self.title,
            description=self.description,
            package=self.package,
            documentation_url=self.documentation_url,
            custom=True,
        )


class ConnectorSpec(models.Model):
    """A connector's specification (its ``spec``), by connector version: the same for every organization."""

    key = models.CharField(max_length=300, unique=True)  # see selectors.spec_key
    spec = models.JSONField()
    read_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.key
