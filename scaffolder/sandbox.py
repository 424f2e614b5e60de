"""Sets up the render's sandbox from inside fresh namespaces, then executes the render.

Started by :mod:`scaffolder.services.rendering` as
``unshare --net --mount --pid --fork --kill-child --mount-proc [--user --map-root-user] -- python -I -S sandbox.py``
with a JSON plan on stdin. Standard library only (``-S``: no site-packages are even looked at).

Inside the new mount namespace it covers the portal's directories (its code, data, database, keys, git
repositories, other runs' scratch space, /tmp, /run, /root, /home) with empty tmpfs mounts, shows again
read-only only what the render needs (the Python installation and the virtualenv), binds the run's
scratch directory and the template, drops to an unprivileged user with no groups, sets
``no_new_privs`` and resource limits, and executes the render. The network namespace has only a
loopback interface that is down: no connection leaves it, and abstract unix sockets of the host are
out of reach.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_NO_NEW_PRIVS = 38

_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    result = _libc.mount(
        source.encode() if source else None,
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source or ''} on {target}: {os.strerror(errno)}")


def _under(path: str, parents: list[str]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in parents)


def _hide(paths: list[str]) -> list[str]:
    """Cover each existing path (outermost first) with an empty tmpfs, or a file with /dev/null."""
    hidden: list[str] = []
    for path in sorted({os.path.realpath(p) for p in paths}, key=len):
        if path == "/" or _under(path, hidden) or not os.path.lexists(path):
            continue
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m")
        else:
            _mount("/dev/null", path, None, MS_BIND)
        hidden.append(path)
    return hidden


def _bind(fd: int, target: str, *, writable: bool) -> None:
    os.makedirs(target, exist_ok=True)
    _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
    if not writable:
        _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def main() -> None:
    plan = json.loads(sys.stdin.buffer.read())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    # Open what must stay reachable before anything is covered; bind it back from the descriptors.
    keep = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in plan["keep"] if os.path.isdir(p)}
    binds = {t: (os.open(s, os.O_PATH | os.O_DIRECTORY), w) for t, (s, w) in plan["binds"].items()}
    hidden = _hide(plan["hide"])
    scratch = plan["scratch_root"]
    _mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=256m")
    for path, fd in keep.items():
        if _under(path, [*hidden, scratch]):
            _bind(fd, path, writable=False)
    for target, (fd, writable) in binds.items():
        _bind(fd, target, writable=writable)
    for path, text in plan["files"].items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    for path in sorted(hidden, key=len, reverse=True):  # the covers themselves are read-only
        if path != scratch and os.path.isdir(path):
            _mount(None, path, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for fd in [*keep.values(), *(fd for fd, _ in binds.values())]:
        os.close(fd)
    uid = plan.get("uid")
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    for name, (soft, hard) in plan["rlimits"].items():
        resource.setrlimit(getattr(resource, f"RLIMIT_{name.upper()}"), (soft, hard))
    os.chdir(plan["cwd"])
    os.execve(plan["argv"][0], plan["argv"], plan["env"])


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # the parent reads this from stderr
        print(f"sandbox setup failed: {exc}", file=sys.stderr)
        sys.exit(70)
