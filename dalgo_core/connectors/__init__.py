"""Airbyte source connectors without Dagster: what both halves of the platform share.

- ``install``: each connector's package from PyPI into a venv of its own;
- ``protocol``: a connector run as an Airbyte-protocol CLI (``spec``, ``check``, ``discover``, ``read``)
  in the organization's sandbox;
- ``calls``: one ``spec``, ``check`` or ``discover`` of an organization, with progress messages (the API's
  tasks);
- ``catalog``: the connectors an organization may use (a curated default set, operators' own);
- ``builtin``: the platform's own database and files sources (run by dlt): their catalog entries and forms;
- ``config``: a configuration against the connector's spec: validation and its secret fields;
- ``streams``: a discovered stream in the protocol's shape;
- ``types`` and ``changes``: schema changes (a discovered catalog against the applied one) and the
  connection's policy for them.

The embedded syncs (``dalgo_assets.ingestion.embedded``) and the API's tasks use these modules; nothing
here imports Dagster or Django.
"""
