"""Bodies of the dbt project endpoints."""

from __future__ import annotations

from ninja import Schema
from pydantic import Field, model_validator

from dalgo_core.spec import NAME_PATTERN, GitSource


class DbtProjectIn(Schema):
    name: str = Field(pattern=NAME_PATTERN)
    path: str | None = Field(None, description="A local folder on the platform's host")
    git: GitSource | None = None

    @model_validator(mode="after")
    def _one_location(self) -> DbtProjectIn:
        if (self.path is None) == (self.git is None):
            raise ValueError("give exactly one of 'path' or 'git'")
        return self


class DbtProjectOut(Schema):
    name: str
    path: str | None
    git: GitSource | None
    commands: list[str] = Field(description="Chores runnable with POST .../commands/<command>")
