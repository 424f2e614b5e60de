"""Shared pieces: results, sizes, the environment of Django subprocesses, timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ROOT / ".bench-cache"
PYTHON = sys.executable
Size = Literal["smoke", "full"]


class BenchError(RuntimeError):
    """A benchmark could not produce its figures (a crash, not a missed target)."""


@dataclass
class Metric:
    label: str
    value: float
    unit: str
    target: str = ""  # e.g. ">= 2000"; checked by `met`
    digits: int = 0

    @property
    def met(self) -> bool | None:
        if not self.target:
            return None
        op, bound = self.target.split()
        return self.value >= float(bound) if op == ">=" else self.value <= float(bound)


@dataclass
class Ratio:
    label: str  # "subject ÷ peer"
    value: float


@dataclass
class Result:
    name: str
    title: str
    peer: str
    size: str
    metrics: list[Metric] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)  # what the benchmark executes, for the docs

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for metric, raw in zip(self.metrics, data["metrics"], strict=True):
            raw["met"] = metric.met
        return data


def django_env(db_url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a portal process pointed at one database (set before django.setup())."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        PORTAL_MODE="development",
        DEBUG="false",  # DEBUG=true records every query in memory
        DATABASE_URL=db_url,
        PORTAL_VAR_DIR=str(var_dir),
        AUDIT_SIGNING_KEY_FILE=str(var_dir / "audit-signing-key.pem"),
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def run(args: Sequence[str], env: dict[str, str], *, stdout: Any = subprocess.PIPE, timeout: float = 1800) -> str:
    """Run a command from the project root; raise BenchError with its stderr if it fails."""
    proc = subprocess.run(
        list(args), cwd=ROOT, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(args[:4])} … exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc.stdout or ""


def run_json(args: Sequence[str], env: dict[str, str], timeout: float = 1800) -> dict[str, Any]:
    """Run a worker that prints one JSON object as its last stdout line."""
    return json.loads(run(args, env, timeout=timeout).strip().splitlines()[-1])


def manage(*args: str, env: dict[str, str], **kwargs: Any) -> str:
    return run([PYTHON, "manage.py", *args], env, **kwargs)


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as t: ...`` then ``t[0]`` is the elapsed seconds."""
    box = [0.0]
    started = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - started


def setup_django() -> None:
    """For worker modules run as ``python -m bench.X``: the env is already set by the parent."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()


def emit(data: dict[str, Any]) -> None:
    """A worker's answer to its parent: one JSON line on stdout."""
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


@contextmanager
def background(args: Sequence[str], env: dict[str, str], log: Path, ready, what: str) -> Iterator[subprocess.Popen]:
    """A server process (its own process group, output to ``log``) once ``ready()``; stopped afterwards."""
    import signal

    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(args), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"{what} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def redis_answers() -> bool:
    """Whether Redis answers PING on 127.0.0.1:6379."""
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False
