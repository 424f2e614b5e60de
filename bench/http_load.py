"""A small HTTP load generator for the benchmarks: keep-alive clients in threads, latencies per request."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from bench.common import BenchError

CLIENTS = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Load:
    requests: int
    seconds: float
    latencies: list[float]
    statuses: Counter[int]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def __add__(self, other: Load) -> Load:
        return Load(
            self.requests + other.requests,
            self.seconds + other.seconds,
            self.latencies + other.latencies,
            self.statuses + other.statuses,
        )

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def session_login(port: int, username: str, password: str) -> str:
    """Sign in through the allauth form (with its CSRF token); the Cookie header of the session."""
    import re

    import requests

    base = f"http://127.0.0.1:{port}"
    with requests.Session() as http:
        page = http.get(f"{base}/accounts/login/", timeout=30)
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        if page.status_code != 200 or not found:
            raise BenchError(f"no login form at /accounts/login/ (HTTP {page.status_code})")
        answer = http.post(
            f"{base}/accounts/login/",
            data={"csrfmiddlewaretoken": found[1], "login": username, "password": password},
            headers={"Referer": f"{base}/accounts/login/"},
            timeout=30,
            allow_redirects=False,
        )
        if answer.status_code not in (302, 303) or "/accounts/login/" in answer.headers.get("Location", ""):
            raise BenchError(f"login as {username} failed (HTTP {answer.status_code})")
        return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


def load(
    port: int,
    paths: Sequence[str],
    headers: dict[str, str],
    seconds: float,
    clients: int = CLIENTS,
    *,
    disjoint: bool = False,
) -> Load:
    """``clients`` threads, each with a keep-alive connection, cycling through ``paths`` until the deadline.

    ``disjoint``: client k walks only ``paths[k::clients]``, so no two clients ever send the same path.
    """
    latencies: list[list[float]] = [[] for _ in range(clients)]
    statuses: list[Counter[int]] = [Counter() for _ in range(clients)]
    errors: list[BaseException] = []
    headers = {"Host": "127.0.0.1", **headers}
    deadline = time.perf_counter() + seconds

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine, i = (paths[k::clients], 0) if disjoint else (paths, k)  # each client starts at a different path
        try:
            while (started := time.perf_counter()) < deadline:
                conn.request("GET", mine[i % len(mine)], headers=headers)
                response = conn.getresponse()
                response.read()
                latencies[k].append(time.perf_counter() - started)
                statuses[k][response.status] += 1
                i += 1
                if response.will_close:
                    conn.close()
        except (OSError, http.client.HTTPException) as exc:
            errors.append(exc)
        finally:
            conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise BenchError(f"{len(errors)} client(s) failed, first: {errors[0]!r}")
    flat = [x for lat in latencies for x in lat]
    return Load(len(flat), elapsed, flat, sum(statuses, Counter()))
