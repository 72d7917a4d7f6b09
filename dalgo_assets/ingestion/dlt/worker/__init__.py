"""The worker of one sync, reset, check or discover of a database or file source, run in the
organization's sandbox by ``run.py`` as ``python -I -c <start> <this folder> <job.json>`` (the start imports
this package from its folder alone).

It imports nothing of the platform (the sandbox binds the platform's Python environment and this folder,
not the source tree): ``main`` reads the job and answers on stdout, one JSON object a line (``io``);
``catalog`` discovers a source's streams (tables or files, their columns and keys) and checks that it
can be read; ``fast`` loads a full refresh with the engines' own fast paths (PostgreSQL's binary COPY,
DuckDB's readers); ``pipeline`` runs dlt for the rest (incremental streams, MySQL, remote files, BigQuery)
and for resets. Modules import their engines when a job needs them: a sync that dlt does not run never
imports it.
"""
