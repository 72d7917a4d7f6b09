"""A warm dbt parser per organization, so a change through the API is live in about a reload's time.

A cold ``dbt parse`` costs about three seconds however small the project: importing dbt and its adapter,
then parsing dbt's own and the adapter's macros. An organization's parser runs in that organization's
sandbox (the same policy as a cold parse, with all its dbt project folders readable), imports dbt once,
and parses any of its projects on request; it exits after ``DALGO_DBT_PARSER_IDLE_SECONDS`` (300) idle.
Only the API's changes use it (``preparing_beside``); everything else parses cold. A failed warm parse
is never the answer: the caller parses cold, whose output names the problem.
"""

from dalgo_core.dbt_parser.client import idle_seconds, parse, running_pid, stop

__all__ = ["idle_seconds", "parse", "running_pid", "stop"]
