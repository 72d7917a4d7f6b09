"""The system calls tenant code may not make: it cannot create a symbolic link, nor a FIFO.

The organization's root is the one folder tenant code writes, and the platform reads and writes files
there outside the sandbox (the DuckDB warehouse, the dbt profile and manifests, connector state). Inside
the sandbox nothing of another organization is mounted, so a link to it dangles; outside, the platform
would follow it. So the sandbox refuses the link itself, at its creation, for every file the platform may
ever open there, rather than at each open: ``symlink`` and ``symlinkat`` fail with ``EPERM`` (what a
filesystem without links answers; dbt's local packages and git's ``core.symlinks=false`` then copy),
``io_uring`` (which can create links without a system call a filter sees) with ``ENOSYS``, and calls of
another architecture's ABI (32-bit and x32 on x86-64) with ``EPERM``. A hard link cannot reach another
organization: only the organization's own root is mounted writable, and a link across mounts fails.
``mknod`` and ``mknodat`` fail too (``EPERM``): without capabilities they make only FIFOs, and a FIFO where
the platform expects a file (the dbt profile the API compares) would hold the platform's reader forever,
a request thread every organization's requests share. Pipes and sockets need neither.

The filter is classic BPF as the kernel reads it (``struct sock_filter``), handed to bubblewrap's
``--seccomp``; children inherit it and cannot drop it.
"""

from __future__ import annotations

import errno
import platform
import struct

# struct seccomp_data: int nr; __u32 arch; ...
_NR, _ARCH = 0, 4
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_RET_K = 0x06
_ALLOW = 0x7FFF0000
_ERRNO = 0x00050000
_X32_BIT = 0x40000000

_IO_URING = (425, 426, 427)  # setup, enter, register: the same numbers on every architecture
# machine -> (AUDIT_ARCH_*, the system calls that make links and FIFOs)
_ARCHES = {
    "x86_64": (0xC000003E, (88, 266, 133, 259)),  # symlink, symlinkat, mknod, mknodat
    "aarch64": (0xC00000B7, (36, 33)),  # symlinkat, mknodat (there is no symlink nor mknod)
}


class Unsupported(RuntimeError):
    """No filter is known for this machine's architecture."""


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def tenant_filter(machine: str | None = None) -> bytes:
    """The compiled filter for ``machine`` (this one by default)."""
    machine = machine or platform.machine()
    if machine not in _ARCHES:
        raise Unsupported(f"no sandbox system-call filter for the {machine} architecture")
    arch, links = _ARCHES[machine]
    denied = [(nr, errno.EPERM) for nr in links] + [(nr, errno.ENOSYS) for nr in _IO_URING]
    checks = len(denied)
    # 0 load arch; 1 native? skip 2; 2 deny; 3 load nr; 4 x32? deny; 5.. each denied nr; then allow, EPERM, ENOSYS
    allow = 5 + checks
    eperm, enosys = allow + 1, allow + 2
    prog = [
        _op(_LD_W_ABS, _ARCH),
        _op(_JEQ_K, arch, jt=1),
        _op(_RET_K, _ERRNO | errno.EPERM),
        _op(_LD_W_ABS, _NR),
        _op(_JGE_K, _X32_BIT, jt=eperm - 5),
    ]
    for i, (nr, err) in enumerate(denied):
        here = 5 + i
        prog.append(_op(_JEQ_K, nr, jt=(eperm if err == errno.EPERM else enosys) - here - 1))
    prog += [_op(_RET_K, _ALLOW), _op(_RET_K, _ERRNO | errno.EPERM), _op(_RET_K, _ERRNO | errno.ENOSYS)]
    return b"".join(prog)
