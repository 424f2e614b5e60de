"""Rendering a template in an isolated process, and taking its output in safely.

Template hooks and Jinja templates are code chosen by whoever wrote the template, so the portal never runs
them itself: :func:`render` starts ``scaffolder/render.py`` (plain cookiecutter) inside the sandbox set up
by ``scaffolder/sandbox.py`` (new network, mount and PID namespaces, the portal's files covered, an
unprivileged user, ``no_new_privs``, resource limits, a timeout) and copies what it produced into a
directory of the portal's own, refusing paths that escape it. docs/scaffolder.md describes what is in
force; :func:`isolation` says what this machine supports.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

PACKAGE_DIR = Path(__file__).resolve().parent.parent
SANDBOX_SCRIPT = PACKAGE_DIR / "sandbox.py"
RENDER_SCRIPT = PACKAGE_DIR / "render.py"
# Paths as the render sees them inside the sandbox.
INSIDE_ROOT = "/tmp"
INSIDE_IO = "/tmp/render"
INSIDE_TEMPLATE = "/tmp/template"
INSIDE_SCRIPT = "/tmp/portal/render.py"
OUTPUT_TAIL = 8000
# Covered in every sandbox, on top of the portal's own directories.
SYSTEM_HIDE = ["/tmp", "/var/tmp", "/dev/shm", "/run", "/var/run", "/root", "/home", "/var/lib/postgresql"]


class RenderFailed(Exception):
    """The template could not be rendered; ``kind`` is hook, template, timeout, limits, path, isolation."""

    def __init__(self, kind: str, message: str, output: str = ""):
        super().__init__(message)
        self.kind, self.message, self.output = kind, message, output


@dataclass(frozen=True)
class Isolation:
    mode: str  # "namespaces" (root: plus a dedicated user), "user-namespaces", or "none"
    detail: str

    @property
    def isolated(self) -> bool:
        return self.mode != "none"


@dataclass
class Rendered:
    root: Path
    context: dict[str, Any]
    files: list[str]
    output: str
    seconds: float
    skipped: list[str] = field(default_factory=list)


# --- What isolation this machine offers -----------------------------------------------------------


def _unshare_command(*, user_namespace: bool) -> list[str] | None:
    binary = shutil.which("unshare")
    if binary is None:
        return None
    flags = ["--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"]
    if user_namespace:
        flags += ["--user", "--map-root-user"]
    return [binary, *flags, "--"]


@functools.cache
def _probe() -> Isolation:
    attempts = []
    if os.geteuid() == 0:
        attempts.append(("namespaces", False))
    attempts.append(("user-namespaces", True))
    reasons = []
    for mode, userns in attempts:
        command = _unshare_command(user_namespace=userns)
        if command is None:
            return Isolation("none", "util-linux's unshare is not installed")
        with tempfile.TemporaryDirectory(prefix="portal-probe-") as tmp:
            if not userns:
                os.chown(tmp, _sandbox_uid(), _sandbox_uid())
            plan = _plan(
                io_dir=Path(tmp), template_dir=Path(tmp), argv=["/bin/true"], uid=_sandbox_uid() if not userns else None
            )
            try:
                done = subprocess.run(
                    [*command, sys.executable, "-I", "-S", str(SANDBOX_SCRIPT)],
                    input=json.dumps(plan).encode(),
                    capture_output=True,
                    timeout=20,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                reasons.append(f"{mode}: {exc}")
                continue
        if done.returncode == 0:
            if userns:
                return Isolation(mode, "user, network, mount and PID namespaces (no dedicated user: not root)")
            return Isolation(mode, f"network, mount and PID namespaces and user id {_sandbox_uid()} with no groups")
        reasons.append(f"{mode}: {done.stderr.decode(errors='replace').strip()[-300:] or done.returncode}")
    return Isolation("none", "; ".join(reasons) or "namespaces are not available")


def isolation() -> Isolation:
    """What a render runs in here (the probe runs once per process)."""
    if settings.SCAFFOLDER_SANDBOX == "none":
        return Isolation("none", "turned off (SCAFFOLDER_SANDBOX=none)")
    found = _probe()
    if settings.SCAFFOLDER_SANDBOX == "namespaces" and not found.isolated:
        raise RenderFailed(
            "isolation", f"SCAFFOLDER_SANDBOX=namespaces, but namespaces are unavailable: {found.detail}"
        )
    return found


def require_isolation() -> Isolation:
    found = isolation()
    if not found.isolated and not settings.SCAFFOLDER_ALLOW_UNISOLATED:
        raise RenderFailed(
            "isolation",
            "This server cannot isolate template renders (" + found.detail + "), and template hooks are code: "
            "rendering is refused. Install util-linux's unshare and allow namespaces, or set "
            "SCAFFOLDER_ALLOW_UNISOLATED=true on a development machine.",
        )
    return found


def _sandbox_uid() -> int:
    return int(settings.SCAFFOLDER_SANDBOX_UID)


# --- The sandbox plan -------------------------------------------------------------------------------


def _hidden_paths() -> list[str]:
    paths = [str(settings.BASE_DIR), str(settings.VAR_DIR), str(settings.GIT_REPOS_DIR)]
    paths += [str(settings.SCAFFOLDER_WORK_DIR), str(Path(settings.AUDIT_SIGNING_KEY_FILE).parent)]
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        paths.append(str(Path(db["NAME"]).parent))
    paths += [os.path.dirname(v) for k, v in os.environ.items() if k.endswith("_FILE") and os.path.isabs(v)]
    return [*paths, *SYSTEM_HIDE, *settings.SCAFFOLDER_SANDBOX_HIDE]


def _rlimits(*, dedicated_user: bool) -> dict[str, tuple[int, int]]:
    """(soft, hard) per limit; the CPU hard limit is a little higher so SIGXCPU, not SIGKILL, says why."""
    mb = 1024 * 1024
    cpu = int(settings.SCAFFOLDER_RENDER_CPU_SECONDS)
    memory = int(settings.SCAFFOLDER_RENDER_MEMORY_MB) * mb
    file_size = int(settings.SCAFFOLDER_RENDER_MAX_FILE_MB) * mb
    limits = {"cpu": (cpu, cpu + 2), "as": (memory, memory), "fsize": (file_size, file_size)}
    limits |= {"nofile": (256, 256), "core": (0, 0)}
    if dedicated_user:  # RLIMIT_NPROC counts every process of the user: only meaningful for a dedicated one
        limits["nproc"] = (128, 128)
    return limits


def _render_env() -> dict[str, str]:
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": f"{INSIDE_IO}/home",
        "TMPDIR": INSIDE_ROOT,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
    }


def _plan(*, io_dir: Path, template_dir: Path, argv: list[str], uid: int | None) -> dict[str, Any]:
    keep = sorted({os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)})
    return {
        "hide": _hidden_paths(),
        "keep": keep,
        "scratch_root": INSIDE_ROOT,
        "binds": {INSIDE_IO: [str(io_dir), True], INSIDE_TEMPLATE: [str(template_dir), False]},
        "files": {INSIDE_SCRIPT: RENDER_SCRIPT.read_text(encoding="utf-8")},
        "uid": uid,
        "rlimits": _rlimits(dedicated_user=uid is not None),
        "env": _render_env(),
        "cwd": INSIDE_IO,
        "argv": argv,
    }


# --- Rendering --------------------------------------------------------------------------------------


def _scratch_parent() -> Path:
    parent = Path(settings.SCAFFOLDER_WORK_DIR) / "scratch"
    parent.mkdir(parents=True, exist_ok=True)
    os.chmod(parent, 0o700)
    return parent


def render(*, template_dir: Path, extra_context: dict[str, Any], dest: Path, timeout: float | None = None) -> Rendered:
    """Render ``template_dir`` with ``extra_context`` in isolation; the project is copied into ``dest``."""
    found = require_isolation()
    timeout = float(timeout or settings.SCAFFOLDER_RENDER_TIMEOUT_SECONDS)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="render-", dir=_scratch_parent()))
    try:
        io_dir = work / "io"
        io_dir.mkdir(mode=0o700)
        uid = _sandbox_uid() if found.mode == "namespaces" else None
        if uid is not None:
            os.chown(io_dir, uid, uid)
        inside = found.isolated
        paths = {
            "template_dir": INSIDE_TEMPLATE if inside else str(template_dir),
            "output_dir": f"{INSIDE_IO}/out" if inside else str(io_dir / "out"),
            "home": f"{INSIDE_IO}/home" if inside else str(io_dir / "home"),
            "result": f"{INSIDE_IO}/result.json" if inside else str(io_dir / "result.json"),
        }
        request = paths | {"extra_context": extra_context}
        (io_dir / "request.json").write_text(json.dumps(request), encoding="utf-8")
        os.chmod(io_dir / "request.json", 0o644)
        log_path = work / "output.log"
        with open(log_path, "wb") as log:
            if inside:
                argv = [sys.executable, "-I", INSIDE_SCRIPT, f"{INSIDE_IO}/request.json"]
                plan = _plan(io_dir=io_dir, template_dir=template_dir, argv=argv, uid=uid)
                command = [
                    *_unshare_command(user_namespace=found.mode == "user-namespaces"),
                    sys.executable,
                    "-I",
                    "-S",
                    str(SANDBOX_SCRIPT),
                ]
                returncode = _run(command, stdin=json.dumps(plan).encode(), log=log, env={}, timeout=timeout)
            else:
                command = [sys.executable, "-I", str(RENDER_SCRIPT), str(io_dir / "request.json")]
                env = _render_env() | {"HOME": paths["home"], "TMPDIR": str(io_dir)}
                returncode = _run(command, stdin=b"", log=log, env=env, timeout=timeout, cwd=io_dir)
        output = _tail(log_path)
        result = _read_result(io_dir / "result.json")
        if result is None:
            raise RenderFailed("limits", _died(returncode, output), output)
        if not result.get("ok"):
            message = _explain_signal(str(result.get("message", "the render failed")))
            raise RenderFailed(str(result.get("kind", "error")), message, output)
        project = str(result.get("project", ""))
        if not project or project.startswith("..") or "/" in project or project in (".", ""):
            raise RenderFailed("path", f"The template wrote its project outside the output directory ({project}).")
        source = io_dir / "out" / project
        if not source.is_dir() or source.is_symlink():
            raise RenderFailed("template", "The template produced no project directory.")
        skipped = copy_tree_safely(source, dest)
        return Rendered(
            root=dest,
            context=result.get("context") or {},
            files=list_files(dest),
            output=output,
            seconds=time.monotonic() - started,
            skipped=skipped,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(command: list[str], *, stdin: bytes, log, env: dict[str, str], timeout: float, cwd: Path | None = None) -> int:
    # Isolated renders set their limits inside the sandbox; the unisolated development mode sets them here.
    preexec = None if cwd is None else _unisolated_limits
    proc = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=cwd,
        start_new_session=True,  # a timeout kills the whole group
        preexec_fn=preexec,  # noqa: PLW1509 (resource limits of the unisolated development mode)
    )
    try:
        proc.communicate(input=stdin, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise RenderFailed(
            "timeout",
            f"The template took longer than {timeout:g} s to render and was stopped (a hook that never ends?).",
            "",
        ) from exc
    return proc.returncode


def _unisolated_limits() -> None:
    import resource

    for name, (soft, hard) in _rlimits(dedicated_user=False).items():
        resource.setrlimit(getattr(resource, f"RLIMIT_{name.upper()}"), (soft, hard))


def _died(returncode: int, output: str) -> str:
    if returncode == 70 and "sandbox setup failed" in output:
        return output.strip().splitlines()[-1]
    if returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        return f"The render used more than {settings.SCAFFOLDER_RENDER_CPU_SECONDS} s of CPU and was stopped."
    if returncode in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ):
        return f"The render wrote a file larger than {settings.SCAFFOLDER_RENDER_MAX_FILE_MB} MB and was stopped."
    if returncode < 0:
        return f"The render was killed by signal {signal.Signals(-returncode).name}."
    return f"The render stopped (exit status {returncode}) without a result."


def _explain_signal(message: str) -> str:
    """cookiecutter reports a hook killed by a limit as a negative exit status; say which limit."""
    reasons = {
        -signal.SIGXCPU: f"it used more than {settings.SCAFFOLDER_RENDER_CPU_SECONDS} s of CPU",
        -signal.SIGXFSZ: f"it wrote a file larger than {settings.SCAFFOLDER_RENDER_MAX_FILE_MB} MB",
        -signal.SIGKILL: "it was killed (out of memory?)",
    }
    for status, reason in reasons.items():
        if f"exit status: {status})" in message:
            return f"{message}: {reason}."
    return message


def _tail(path: Path) -> str:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - OUTPUT_TAIL))
        return fh.read().decode("utf-8", "replace")


def _read_result(path: Path) -> dict | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return None
        data = fh.read(5 * 1024 * 1024 + 1)
    try:
        result = json.loads(data)
    except ValueError:
        return None
    return result if isinstance(result, dict) else None


# --- Taking the output in -----------------------------------------------------------------------------


def _inside(parent: str, target: str) -> bool:
    normal = os.path.normpath(os.path.join(parent, target))
    return not (normal == ".." or normal.startswith("../") or os.path.isabs(normal))


def copy_tree_safely(source: Path, dest: Path) -> list[str]:
    """Copy a rendered project into ``dest`` without following links; refuse anything that escapes it.

    Returns the paths it skipped (a ``.git`` directory a hook created: the portal makes the repository)."""
    max_files = int(settings.SCAFFOLDER_RENDER_MAX_FILES)
    max_bytes = int(settings.SCAFFOLDER_RENDER_MAX_TOTAL_MB) * 1024 * 1024
    counted = {"files": 0, "bytes": 0}
    skipped: list[str] = []
    dest.mkdir(parents=True, exist_ok=False)

    def walk(src_dir: Path, dst_dir: Path, rel: str) -> None:
        with os.scandir(src_dir) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                name = entry.name
                path = f"{rel}{name}"
                try:
                    name.encode("utf-8")
                except UnicodeEncodeError as exc:
                    raise RenderFailed("path", f"{path!r}: file names must be UTF-8.") from exc
                if "\\" in name or name in (".", ".."):
                    raise RenderFailed("path", f"{path}: this file name is refused.")
                counted["files"] += 1
                if counted["files"] > max_files:
                    raise RenderFailed("limits", f"The template produced more than {max_files} files.")
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISLNK(mode):
                    target = os.readlink(entry.path)
                    if os.path.isabs(target) or not _inside(rel, target):
                        raise RenderFailed(
                            "path", f"{path} is a symbolic link to {target}, outside the project: refused."
                        )
                    os.symlink(target, dst_dir / name)
                elif stat.S_ISDIR(mode):
                    if name == ".git":
                        skipped.append(path + "/")
                        continue
                    (dst_dir / name).mkdir()
                    walk(Path(entry.path), dst_dir / name, f"{path}/")
                elif stat.S_ISREG(mode):
                    fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
                    with os.fdopen(fd, "rb") as src, open(dst_dir / name, "xb") as dst:
                        shutil.copyfileobj(src, dst)
                        counted["bytes"] += dst.tell()
                    if counted["bytes"] > max_bytes:
                        raise RenderFailed("limits", f"The template produced more than {max_bytes // 2**20} MB.")
                    os.chmod(dst_dir / name, 0o755 if mode & 0o111 else 0o644)
                else:
                    raise RenderFailed("path", f"{path} is not a regular file, directory or link: refused.")

    try:
        walk(source, dest, "")
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return skipped


def list_files(root: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        for name in sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            found.append(name if rel == "." else f"{rel}/{name}")
    return sorted(found)


@dataclass
class FileView:
    path: str
    size: int
    binary: bool
    content: str | None  # None when binary or too large
    link: str = ""


def file_views(root: Path, *, max_bytes: int = 100_000) -> list[FileView]:
    views = []
    for rel in list_files(root):
        path = root / rel
        if path.is_symlink():
            views.append(FileView(rel, 0, False, None, link=os.readlink(path)))
            continue
        data = path.read_bytes()
        binary = b"\0" in data[:8000]
        content = None
        if not binary and len(data) <= max_bytes:
            try:
                content = data.decode("utf-8")
            except UnicodeDecodeError:
                binary = True
        views.append(FileView(rel, len(data), binary, content))
    return views
