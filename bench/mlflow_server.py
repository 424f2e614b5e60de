"""A real ``mlflow server`` for the benchmarks: started on a SQLite file in its own process group, and its CPU."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import PYTHON, BenchError, sqlite_url
from bench.http_load import free_port

MLFLOW = Path(PYTHON).parent / "mlflow"
SERVER_WORKERS = 2  # uvicorn processes: one per core of the 2-core machine the figures come from
# The GenAI job runner (huey processes) is not used by the sync: off, as in the tests, to leave the CPU to the server.
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
SERVER_CMD = f"mlflow server --backend-store-uri sqlite:///<copy> --workers {SERVER_WORKERS}"


@contextmanager
def mlflow_server(db: Path, work: Path) -> Iterator[tuple[str, int]]:
    """Start ``mlflow server`` on the SQLite file and a free port; yields its URL and process group at once.

    It takes seconds to start: the workers wait for it (``wait_for``) while they import.
    """
    port = free_port()
    args = [str(MLFLOW), "server", "--backend-store-uri", sqlite_url(db), "--default-artifact-root"]
    args += [str(work / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", str(SERVER_WORKERS)]
    log = work / "mlflow-server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, cwd=work, env={**os.environ, **SERVER_ENV}, stdout=out, stderr=out, start_new_session=True
        )
    try:
        yield f"http://127.0.0.1:{port}", proc.pid
    except BenchError as exc:
        raise BenchError(f"{exc}\nmlflow server (exit status {proc.poll()}):\n{log.read_text()[-2000:]}") from exc
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for(url: str, timeout: float = 180) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise BenchError(f"mlflow server did not answer on {url} within {timeout:.0f} s")


def group_cpu(pgid: int) -> float:
    """CPU-seconds used so far by the live processes of a process group (the server and its workers)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")
