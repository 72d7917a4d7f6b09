"""Production deployment: the PostgreSQL instance, ``dalgo serve`` (the production topology on one machine,
without Docker), and the generators of the docker compose file and the Kubernetes (Helm) values.

Everything is derived from the organizations folder, so adding an organization is: add its folder,
regenerate (``dalgo deploy compose|helm``) or restart ``dalgo serve``.
"""
