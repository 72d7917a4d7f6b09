"""Code servers that share what they import: one process imports Dagster and forks the rest.

Every organization's code server (``dagster code-server start``: a proxy that keeps reloads live, and
the ``dagster api grpc`` child it starts) imported all of Dagster for itself, about 100 MB of the
proxy's memory. Under ``dalgo up`` and ``dalgo serve`` supervisord starts the fork server
(``dalgo_ops.forkserver.server``) first, and each code server's program is ``dalgo-fork code-server
start ...``: the fork server forks it from its already-imported, frozen memory, so the pages Dagster
takes are shared by every organization's proxy instead of copied into each. Each organization is still
its own process, its own session, its own failure; its definitions are loaded by the child the proxy
starts, as before (a reload is Dagster's own). Without the fork server ``dalgo-fork`` runs ``dagster``
itself, so a code server always starts. On Kubernetes and with compose each code server is its own
container, and starts ``dagster`` directly.
"""
