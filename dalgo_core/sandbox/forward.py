"""Runs inside the sandbox (standard library only, bound in as one file): listen on the loopback addresses
tenant code connects to and carry each connection over a unix socket to the relay outside, then exec the
command. The sandbox has its own network namespace: these listeners are all it can reach.

Usage: python forward.py '<json [[listen_ip, port, socket_path], ...]>' command args...
"""

import contextlib
import json
import os
import socket
import sys
import threading


def pipe(src: socket.socket, dst: socket.socket) -> None:
    """Copy one direction of a connection until it ends, then close both directions."""
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def _serve(listener: socket.socket, path: str) -> None:
    while True:
        client, _ = listener.accept()
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(path)
        except OSError:
            client.close()
            continue
        threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()


def main() -> None:
    routes = json.loads(sys.argv[1])
    listeners = []
    for ip, port, path in routes:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((ip, int(port)))
        listener.listen(64)
        listeners.append((listener, path))
    if os.fork() == 0:  # the forwarder: lives until the sandbox ends
        threads = [threading.Thread(target=_serve, args=lp, daemon=True) for lp in listeners]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        os._exit(0)
    for listener, _ in listeners:
        listener.close()
    os.execvp(sys.argv[2], sys.argv[2:])


if __name__ == "__main__":
    main()
