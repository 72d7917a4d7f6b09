"""The warm dbt parser of one organization: runs inside that organization's sandbox, imports dbt once,
and parses its dbt projects on request until it has been idle a while.

Standalone on purpose (the standard library and dbt's environment only): it runs as a file bound into the sandbox,
where the platform's own packages are not. One request per connection, one at a time: a JSON line
``{"cwd": ..., "env": {...}, "args": [...]}`` answered by ``{"ok": true|false}``. The environment of
each request replaces the process's whole environment, exactly as a fresh ``dbt`` process would get it.

    python server.py SOCKET_DIR IDLE_SECONDS ADAPTER
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import socket
import sys
import time

SOCKET_NAME = "dbt-parser.sock"
MAX_REQUEST = 1 << 20
COLLECT_AFTER_SECONDS = 1.0  # quiet this long after a parse: the garbage collector runs
MAX_PARSES_UNCOLLECTED = 5


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk or len(data) + len(chunk) > MAX_REQUEST:
            raise ValueError("incomplete or oversized request")
        data += chunk
    return data


def _parse(runner_class: type, request: dict) -> bool:
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in request["env"].items()})
    os.chdir(request["cwd"])
    result = runner_class().invoke([str(a) for a in request["args"]])
    return bool(result.success)


def _fast_manifest_writes() -> None:
    """dbt writes its artifacts with the standard library's ``json`` (a third of a warm parse of a new
    project, most of it the manifest): written with orjson instead, with dbt's own encoder for what orjson
    does not serialize itself (datetimes included, so they read as dbt writes them); dbt's writer for
    anything orjson refuses."""
    try:
        import orjson
        from dbt.artifacts.schemas import base
        from dbt_common.utils.encoding import JSONEncoder
    except ImportError:
        return
    dbt_write, default = base.write_json, JSONEncoder().default

    def write_json(path: str, data: dict) -> bool:
        try:
            payload = orjson.dumps(data, default=default, option=orjson.OPT_PASSTHROUGH_DATETIME)
        except TypeError:
            return dbt_write(path, data)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(payload)
        return True

    base.write_json = write_json


def _docs_context_only_for_jinja() -> None:
    """At every parse dbt builds a docs context for each of its and the adapter's ~500 macros to render
    their descriptions (a fifth of a warm parse of a new project), though none holds Jinja, and dbt's
    renderer returns a text without Jinja untouched, never reading the context. The context is built
    only for a macro whose description or arguments' descriptions hold Jinja: the same manifest."""
    try:
        from dbt.clients.jinja import _HAS_RENDER_CHARS_PAT
        from dbt.contracts.graph.nodes import Macro
        from dbt.parser import manifest
    except ImportError:
        return
    build = manifest.generate_runtime_docs_context

    def plain(text: object) -> bool:
        return isinstance(text, str) and _HAS_RENDER_CHARS_PAT.search(text) is None

    def docs_context(config: object, target: object, *rest: object) -> object:
        if (
            isinstance(target, Macro)
            and plain(target.description)
            and all(plain(a.description) for a in target.arguments)
        ):
            return {}  # get_rendered returns each of these texts as it is
        return build(config, target, *rest)

    manifest.generate_runtime_docs_context = docs_context


def main() -> None:
    folder, idle, adapter = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    from dbt.cli.main import dbtRunner

    _fast_manifest_writes()
    _docs_context_only_for_jinja()

    with contextlib.suppress(ImportError):  # the adapter's plugin; dbt would import it on the first parse
        importlib.import_module(f"dbt.adapters.{adapter}")
    with contextlib.suppress(ImportError):
        # dbt's own cache of parsed Jinja by its source text: dbt's and the adapter's ~500 macros are
        # parsed once per parser instead of once per parse (most of a warm parse's time without it)
        from dbt_common.tests import enable_test_caching

        enable_test_caching()
    os.chdir(folder)  # a relative name: a socket's path is limited to 108 bytes
    with contextlib.suppress(FileNotFoundError):
        os.unlink(SOCKET_NAME)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(SOCKET_NAME)
    listener.listen(8)
    home = os.getcwd()
    # The collector runs between parses, never during one: a full collection of a warm parser's objects
    # took 150-170 ms, one parse in five (a new project parses in ~115 ms), while an API change waited.
    gc.disable()
    last_request, parses_since_collect = time.monotonic(), 0
    while True:
        quiet = time.monotonic() - last_request
        listener.settimeout(COLLECT_AFTER_SECONDS if parses_since_collect else max(idle - quiet, 0.01))
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            if parses_since_collect:  # a quiet moment after parsing: collect now
                gc.collect()
                parses_since_collect = 0
            if time.monotonic() - last_request >= idle:
                break
            continue
        with conn:
            conn.settimeout(None)
            try:
                ok = _parse(dbtRunner, json.loads(_read_line(conn)))
            except Exception:  # the caller parses the cold way, which says what went wrong
                ok = False
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps({"ok": ok}).encode() + b"\n")
        os.chdir(home)
        last_request, parses_since_collect = time.monotonic(), parses_since_collect + 1
        if parses_since_collect >= MAX_PARSES_UNCOLLECTED:  # parses back to back: memory stays bounded
            gc.collect()
            parses_since_collect = 0
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(home, SOCKET_NAME))


if __name__ == "__main__":
    main()
