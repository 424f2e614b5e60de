"""Reading MLflow: a client whose failures become one clear error, and batched reads of the registry.

The sync (``catalog.services.mlflow_sync``) and the demo and governance code that talk to MLflow
share these: a fast probe (the client itself retries a refused connection for minutes), exact-name
filters, every version of a group of models in one call, runs in batches of RUN_CHUNK ids, reads
ahead in threads, and the lineage a run carries.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
from mlflow import MlflowClient
from mlflow.entities import Run, ViewType
from mlflow.entities.model_registry import ModelVersion as MlflowVersion
from mlflow.exceptions import MlflowException, RestException

from catalog.services.lineage import DatasetInput, RunLineage, lineage_from_run

PAGE_SIZE = 1000  # registered models and experiments per page
VERSION_PAGE = 10_000  # versions per page (MLflow's default maximum)
RUN_CHUNK = 1000  # run ids per search_runs call (the server parses every id: larger calls save little)
CONNECT_TIMEOUT_SECONDS = 5.0


class MlflowUnavailable(RuntimeError):
    """MLflow did not answer, or answered with an error; the catalog was left as it was."""


@dataclass
class MlflowReader:
    client: MlflowClient
    uri: str
    experiment_ids: list[str] = field(default_factory=list)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the MLflow client; turn its failures into one clear error."""
        try:
            return fn(*args, **kwargs)
        except RestException as exc:
            raise MlflowUnavailable(f"MLflow at {self.uri} returned an error: {exc}") from exc
        except (MlflowException, requests.RequestException, OSError) as exc:
            raise MlflowUnavailable(f"MLflow at {self.uri} is not answering: {exc}") from exc

    def pages(self, fn: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
        token: str | None = None
        while True:
            page = self.call(fn, page_token=token, **kwargs)
            yield from page
            token = page.token
            if not token:
                return

    def versions_of(self, names: list[str]) -> dict[str, list[MlflowVersion]]:
        """Every version of these models in one call (and pages); a name with a quote in it gets its own call."""
        plain = [name for name in names if "'" not in name]
        calls = [(name_filter(name), {name}) for name in names if "'" in name]  # name_filter may match more
        if plain:
            calls.append(("name IN ({})".format(", ".join(f"'{name}'" for name in plain)), set(plain)))
        found: dict[str, list[MlflowVersion]] = {name: [] for name in names}
        for filter_string, wanted in calls:
            pages = self.pages(self.client.search_model_versions, filter_string=filter_string, max_results=VERSION_PAGE)
            for v in pages:
                if v.name in wanted:
                    found[v.name].append(v)
        return found

    def runs(self, run_ids: list[str]) -> dict[str, Run]:
        """These runs, RUN_CHUNK ids per ``search_runs`` call, from the experiments read at connection."""
        runs: dict[str, Run] = {}
        for start in range(0, len(run_ids), RUN_CHUNK):
            chunk = run_ids[start : start + RUN_CHUNK]
            quoted = ", ".join(f"'{run_id}'" for run_id in chunk)
            for run in self.pages(
                self.client.search_runs,
                experiment_ids=self.experiment_ids,
                filter_string=f"attributes.run_id IN ({quoted})",
                run_view_type=ViewType.ALL,
                max_results=RUN_CHUNK,
            ):
                runs[run.info.run_id] = run
        return runs

    def versions_and_runs(self, names: list[str]) -> tuple[dict[str, list[MlflowVersion]], dict[str, Run]]:
        """A group's versions and their runs. MLflow calls only: safe in a read-ahead thread, no database."""
        versions = self.versions_of(names)
        return versions, self.runs(sorted({v.run_id for vs in versions.values() for v in vs if v.run_id}))


def mlflow_probe(uri: str) -> None:
    """Fail fast: the MLflow client retries a refused connection for minutes."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        response = requests.get(uri.rstrip("/") + "/health", timeout=CONNECT_TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        raise MlflowUnavailable(f"MLflow at {uri} is not answering: {type(exc).__name__}: {exc}") from exc
    if response.status_code >= 500:
        raise MlflowUnavailable(f"MLflow at {uri} is not answering: /health returned HTTP {response.status_code}")


def name_filter(name: str) -> str:
    """An exact-name filter. MLflow's parser has no escapes, so pick the quote the name lacks."""
    if "'" not in name:
        return f"name='{name}'"
    if '"' not in name:
        return f'name="{name}"'
    prefix = name[: min(name.index("'"), name.index('"'))]
    return f"name LIKE '{prefix}%'"  # callers keep only the exact name


def read_ahead[T, R](fetch: Callable[[T], R], items: list[T], depth: int) -> Generator[tuple[T, R]]:
    """Yield (item, fetch(item)) in order; up to ``depth`` next items are fetched in threads meanwhile.

    Close it (``closing``) so its threads are let go at once if the caller stops early.
    """
    pool = ThreadPoolExecutor(max_workers=depth, thread_name_prefix="mlflow-read-ahead")
    try:
        ahead: deque[tuple[T, Future[R]]] = deque()
        for item in items:
            ahead.append((item, pool.submit(fetch, item)))
            if len(ahead) > depth:
                done, future = ahead.popleft()
                yield done, future.result()
        while ahead:
            done, future = ahead.popleft()
            yield done, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_lineage(run_id: str, runs: dict[str, Run]) -> RunLineage:
    """The six lineage components a run carries (a run MLflow no longer has is a problem, not a crash)."""
    run = runs.get(run_id)
    if run is None:
        lineage = lineage_from_run(tags={}, params={}, metrics={}, datasets=[])
        if run_id:
            lineage.problems.append(f"run {run_id} was not found in MLflow")
        return lineage
    datasets = []
    for item in run.inputs.dataset_inputs if run.inputs else []:
        ds = item.dataset
        datasets.append(DatasetInput(name=ds.name, digest=ds.digest, uri=dataset_uri(ds.source)))
    return lineage_from_run(tags=run.data.tags, params=run.data.params, metrics=run.data.metrics, datasets=datasets)


def dataset_uri(source: str) -> str:
    """MLflow stores a dataset's source as JSON such as {"uri": "s3://…"}; keep the URI."""
    try:
        parsed = json.loads(source)
    except (TypeError, ValueError):
        return (source or "")[:500]
    if isinstance(parsed, dict):
        for key in ("uri", "url", "path", "table_name"):
            if parsed.get(key):
                return str(parsed[key])[:500]
    return (source or "")[:500]
