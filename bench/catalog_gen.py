"""Bulk generator of a model catalog, for the ``catalog_*`` benchmarks.

One deterministic description of the catalog (``catalog_spec``) feeds both
sides: the portal's tables (``catalog.models.Project/Model/ModelVersion``,
bulk-inserted with ``bulk_create``, after ``migrate`` and ``seed_demo``) and
MLflow's registry tables (bulk-inserted through MLflow's own SQLAlchemy models
into a database that ``SqlAlchemyStore(db_uri)`` created and migrated; the
store's ``create_model_version`` would take minutes for 50,000 versions).

The ``mlflow-runs`` side (for ``catalog_sync``) is the same registry plus what a
real tracking server holds behind it: one experiment per project, and for every
version its run, carrying the lineage contract's tags (catalog/services/lineage.py),
params, metrics and, for some, a logged dataset input; the registered models carry
the ``mlplatform.*`` tags the sync reads. A ``mlflow server`` serves it as is.

The SQLite files are cached in ``.bench-cache/`` by their parameters. Worker:
``python -m bench.catalog_gen portal|mlflow|mlflow-runs --size smoke|full [--db-uri URI]``
(the portal side reads ``DATABASE_URL``).
"""

from __future__ import annotations

import argparse
import io
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import CACHE_DIR, PYTHON, Size, django_env, emit, run_json, setup_django, sqlite_url

VERSION = 2  # bump when the generated rows change, so old cache files are not reused
RUNS_VERSION = 1  # the same, for what the mlflow-runs side adds (runs, experiments, model tags)
SEED = 20250607
SIZES: dict[str, dict[str, int]] = {
    "smoke": {"teams": 20, "projects": 20, "models": 200, "versions": 2_000, "big": 500},
    "full": {"teams": 20, "projects": 400, "models": 5_000, "versions": 50_000, "big": 10_000},
}
BIG_MODEL = "fraud-card-scoring-xgb-big"  # the model with many versions
SMALL_MODEL = "fraud-card-scoring-xgb-single"  # the model with exactly one version

TEAM_SLUGS = [
    "fraud", "forecasting", "credit", "search", "ads", "pricing", "recsys", "risk", "payments", "growth",
    "nlp", "vision", "speech", "ops", "supply", "marketing", "support", "security", "identity", "maps",
]  # fmt: skip
DOMAINS = [
    "fraud", "churn", "demand", "credit", "ranking", "pricing", "ctr", "eta", "spam", "toxicity",
    "intent", "sentiment", "anomaly", "ltv", "inventory", "routing", "ocr", "asr", "embedding", "forecast",
]  # fmt: skip
PURPOSES = ["scoring", "detector", "classifier", "ranker", "forecaster", "estimator", "tagger", "encoder", "model"]
ALGOS = ["xgb", "lgbm", "bert", "resnet", "prophet", "lstm", "logreg", "gbdt", "tabnet", "t5", "catboost", "mlp"]
TASKS = ["classification", "regression", "forecasting", "ranking", "anomaly-detection", "nlp", "vision"]
FRAMEWORKS = ["xgboost", "lightgbm", "pytorch", "tensorflow", "sklearn", "prophet", "catboost", "onnx"]
TAGS = [
    "pii", "realtime", "batch", "gpu", "tabular", "text", "images", "eu", "us", "apac", "experimental",
    "critical", "shadow", "ab-test", "retrain-weekly", "retrain-daily", "explainable", "fairness-reviewed",
]  # fmt: skip
ALIASES = ["champion", "challenger", "production", "staging", "shadow"]
ADJECTIVES = ["Real-time", "Nightly", "Gradient-boosted", "Transformer-based", "Calibrated", "Lightweight", "Ensemble"]
RISK_TIERS = ["low", "medium", "medium", "high"]
# Features the runs claim (mlplatform.feature_versions); catalog_sync registers them in the portal first.
FEATURES = {
    f"{domain}_{aggregate}": {
        "computation_logic": f"{aggregate.split('_')[0].upper()}({domain}_value) OVER {aggregate.split('_')[1]}",
        "null_handling": "zero_fill",
        "data_type": "float32",
        "source_table": f"{domain}_events",
    }
    for domain in DOMAINS[:10]
    for aggregate in ("count_7d", "avg_30d")
}
UNREGISTERED_FEATURE = ("retired_feature", "0123456789ab")  # claimed by a few runs: the sync reports it


@dataclass
class ModelSpec:
    name: str
    team: str
    project: str | None
    description: str
    tags: list[str]
    task: str
    framework: str
    versions: int
    aliases: dict[str, int] = field(default_factory=dict)  # alias -> version


@dataclass
class CatalogSpec:
    teams: list[str]
    projects: list[tuple[str, str, str]]  # name, team, description
    models: list[ModelSpec]

    @property
    def version_total(self) -> int:
        return sum(m.versions for m in self.models)


def catalog_spec(size: Size) -> CatalogSpec:
    """The catalog for a size, the same on every call."""
    p = SIZES[size]
    rnd = random.Random(SEED)
    teams = TEAM_SLUGS[: p["teams"]]
    projects = []
    for i in range(p["projects"]):
        domain = rnd.choice(DOMAINS)
        name = f"{domain}-{rnd.choice(PURPOSES)}-project-{i:03d}"
        projects.append((name, rnd.choice(teams), f"{domain.title()} work of the team."))
    models = []
    for i in range(p["models"] - 2):
        domain, purpose, algo = rnd.choice(DOMAINS), rnd.choice(PURPOSES), rnd.choice(ALGOS)
        task, framework = rnd.choice(TASKS), rnd.choice(FRAMEWORKS)
        models.append(
            ModelSpec(
                name=f"{domain}-{purpose}-{algo}-{i:04d}",
                team=rnd.choice(teams),
                project=rnd.choice(projects)[0] if rnd.random() < 0.8 else None,
                description=f"{rnd.choice(ADJECTIVES)} {algo} {purpose} for {domain} ({task}); "
                f"trained on the {rnd.choice(DOMAINS)} feature set, owned by the on-call rotation.",
                tags=rnd.sample(TAGS, rnd.randint(1, 4)),
                task=task,
                framework=framework,
                versions=1,
            )
        )
    for name, versions in ((BIG_MODEL, p["big"]), (SMALL_MODEL, 1)):
        models.append(
            ModelSpec(
                name=name,
                team="fraud",
                project=projects[0][0],
                description="Gradient-boosted card-fraud scoring model, retrained continuously.",
                tags=["pii", "realtime", "critical"],
                task="classification",
                framework="xgboost",
                versions=versions,
            )
        )
    rest = p["versions"] - sum(m.versions for m in models)
    others = models[:-2]
    for _ in range(rest):  # spread the remaining versions unevenly (some models get many)
        others[min(int(rnd.expovariate(1 / (len(others) / 4))), len(others) - 1)].versions += 1
    for m in models:
        if m.versions >= 2 and rnd.random() < 0.3 or m.name == BIG_MODEL:
            m.aliases["champion"] = m.versions
            if rnd.random() < 0.5 or m.name == BIG_MODEL:
                m.aliases[rnd.choice(ALIASES[1:])] = max(1, m.versions - 1)
    return CatalogSpec(teams, projects, models)


def _hex(rnd: random.Random, n: int) -> str:
    return f"{rnd.getrandbits(4 * n):0{n}x}"


def version_rows(m: ModelSpec, rnd: random.Random) -> list[dict[str, Any]]:
    """The versions of one model, as plain values both loaders use."""
    by_version: dict[int, list[str]] = {}
    for alias, v in m.aliases.items():
        by_version.setdefault(v, []).append(alias)
    base_ms = 1_700_000_000_000
    rows = []
    for v in range(1, m.versions + 1):
        rows.append(
            {
                "version": v,
                "run_id": _hex(rnd, 32),
                "created_ms": base_ms + v * 3_600_000 + rnd.randrange(3_600_000),
                "aliases": sorted(by_version.get(v, [])),
                "metrics": {"auc": round(rnd.uniform(0.7, 0.99), 4), "f1": round(rnd.uniform(0.5, 0.95), 4)},
                "params": {"learning_rate": rnd.choice([0.01, 0.03, 0.1]), "max_depth": rnd.randint(3, 12)},
                "commit": _hex(rnd, 40),
                "lineage": rnd.randint(2, 6),
            }
        )
    return rows


def _portal(size: Size) -> dict[str, Any]:
    setup_django()
    from django.core.management import call_command
    from django.db import transaction

    from catalog.models import Model, ModelVersion, Project
    from portal.models import Team

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    call_command("seed_demo", "--quiet-logins")
    spec = catalog_spec(size)
    rnd = random.Random(SEED + 1)
    with transaction.atomic():
        have = set(Team.objects.values_list("slug", flat=True))
        Team.objects.bulk_create(
            [Team(slug=s, name=s.title(), description=f"The {s} team.") for s in spec.teams if s not in have]
        )
        teams = dict(Team.objects.values_list("slug", "id"))
        Project.objects.bulk_create(
            [
                Project(name=n, team_id=teams[t], description=d, tags=["bench"], lifecycle="production")
                for n, t, d in spec.projects
            ],
            batch_size=2000,
        )
        projects = dict(Project.objects.values_list("name", "id"))
        Model.objects.bulk_create(
            [
                Model(
                    name=m.name,
                    team_id=teams[m.team],
                    project_id=projects.get(m.project) if m.project else None,
                    description=m.description,
                    tags=m.tags,
                    source="mlflow",
                    task=m.task,
                    framework=m.framework,
                    lifecycle=rnd.choice(["experimental", "production", "production", "deprecated"]),
                    version_count=m.versions,
                    latest_version=m.versions,
                    mlflow_updated_ms=1_700_000_000_000 + m.versions * 3_600_000,
                )
                for m in spec.models
            ],
            batch_size=2000,
        )
        ids = dict(Model.objects.values_list("name", "id"))
        batch: list[ModelVersion] = []
        for m in spec.models:
            for r in version_rows(m, rnd):
                batch.append(
                    ModelVersion(
                        model_id=ids[m.name],
                        version=r["version"],
                        run_id=r["run_id"],
                        status="READY",
                        source_uri=f"mlflow-artifacts:/{r['run_id']}/artifacts/model",
                        aliases=r["aliases"],
                        metrics=r["metrics"],
                        params=r["params"],
                        run_tags={"mlflow.source.git.commit": r["commit"]},
                        code_commit=r["commit"],
                        data_snapshot=f"s3://lake/{m.name}/snapshot-{r['version']}" if r["lineage"] > 2 else "",
                        lineage_complete=r["lineage"],
                        mlflow_created_ms=r["created_ms"],
                        mlflow_updated_ms=r["created_ms"],
                    )
                )
                if len(batch) >= 5000:
                    ModelVersion.objects.bulk_create(batch, batch_size=1000)
                    batch.clear()
        ModelVersion.objects.bulk_create(batch, batch_size=1000)
        # bulk_create sends no signals: index what was loaded, as a restore would (manage.py search_reindex).
        call_command("search_reindex", stdout=io.StringIO())
    from django.db import connection

    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    elif connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return {"seconds": time.perf_counter() - started, "versions": spec.version_total, "models": len(spec.models)}


def _mlflow(size: Size, db_uri: str, *, runs: bool = False) -> dict[str, Any]:
    """Fill MLflow's tables: the store creates and migrates the schema, then bulk inserts.

    Without ``runs``: the registry only (catalog_search's peer). With ``runs``: the same registry
    rows, plus experiments, runs and the models' ``mlplatform.*`` tags (catalog_sync's server).
    """
    from mlflow.store.model_registry.dbmodels.models import (
        SqlModelVersion,
        SqlRegisteredModel,
        SqlRegisteredModelAlias,
        SqlRegisteredModelTag,
    )
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore
    from sqlalchemy import insert

    started = time.perf_counter()
    store = SqlAlchemyStore(db_uri)
    spec = catalog_spec(size)
    rnd = random.Random(SEED + 1)
    base_ms = 1_700_000_000_000
    from bench.catalog_gen_runs import RunsWriter  # it builds on this module's spec and constants

    runs_writer = RunsWriter(spec, db_uri) if runs else None
    with store.ManagedSessionMaker() as session:
        session.execute(
            insert(SqlRegisteredModel),
            [
                {
                    "name": m.name,
                    "creation_time": base_ms,
                    "last_updated_time": base_ms + m.versions * 3_600_000,
                    "description": m.description,
                }
                for m in spec.models
            ],
        )
        session.execute(
            insert(SqlRegisteredModelTag),
            [{"name": m.name, "key": t, "value": "true"} for m in spec.models for t in m.tags]
            + [{"name": m.name, "key": "team", "value": m.team} for m in spec.models]
            + (runs_writer.model_tags() if runs_writer else []),
        )
        aliases, batch = [], []
        for m in spec.models:
            for r in version_rows(m, rnd):
                batch.append(
                    {
                        "name": m.name,
                        "version": r["version"],
                        "creation_time": r["created_ms"],
                        "last_updated_time": r["created_ms"],
                        "description": "",
                        "current_stage": "None",
                        "source": f"mlflow-artifacts:/{r['run_id']}/artifacts/model",
                        "run_id": r["run_id"],
                        "status": "READY",
                    }
                )
                aliases += [{"name": m.name, "alias": a, "version": r["version"]} for a in r["aliases"]]
                if runs_writer:
                    runs_writer.add(m, r)
                if len(batch) >= 5000:
                    session.execute(insert(SqlModelVersion), batch)
                    batch = []
                    if runs_writer:
                        runs_writer.flush(session)
        if batch:
            session.execute(insert(SqlModelVersion), batch)
        if aliases:
            session.execute(insert(SqlRegisteredModelAlias), aliases)
        if runs_writer:
            runs_writer.flush(session)
    store.engine.dispose()
    answer = {"seconds": time.perf_counter() - started, "versions": spec.version_total}
    if runs_writer:
        answer["runs"] = runs_writer.count
    return answer


def portal_cache_path(size: Size) -> Path:
    p = SIZES[size]
    return CACHE_DIR / f"catalog-p{p['projects']}-m{p['models']}-v{p['versions']}-b{p['big']}-v{VERSION}-portal.sqlite3"


def mlflow_cache_path(size: Size) -> Path:
    p = SIZES[size]
    return CACHE_DIR / f"catalog-p{p['projects']}-m{p['models']}-v{p['versions']}-b{p['big']}-v{VERSION}-mlflow.sqlite3"


def mlflow_runs_cache_path(size: Size) -> Path:
    p = SIZES[size]
    name = f"catalog-p{p['projects']}-m{p['models']}-v{p['versions']}-b{p['big']}-v{VERSION}-r{RUNS_VERSION}"
    return CACHE_DIR / f"{name}-mlflow-runs.sqlite3"


def ensure_sqlite(size: Size, side: str) -> tuple[Path, float | None]:
    """The cached SQLite file of one side (portal, mlflow or mlflow-runs), and generation seconds if made now."""
    path = {"portal": portal_cache_path, "mlflow": mlflow_cache_path, "mlflow-runs": mlflow_runs_cache_path}[side](size)
    if path.exists():
        return path, None
    CACHE_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-catalog-gen-", dir=CACHE_DIR) as tmp:
        partial = Path(tmp) / path.name
        args = [PYTHON, "-m", "bench.catalog_gen", side, "--size", size]
        if side != "portal":
            args += ["--db-uri", f"sqlite:///{partial}"]
        answer = run_json(args, django_env(sqlite_url(partial), Path(tmp)))
        partial.rename(path)
    return path, answer["seconds"]


def copy_sqlite(src: Path, dest_dir: Path) -> Path:
    dest = dest_dir / src.name
    shutil.copyfile(src, dest)
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description="Worker: generate the bench catalog into one side's database.")
    parser.add_argument("side", choices=["portal", "mlflow", "mlflow-runs"])
    parser.add_argument("--size", choices=list(SIZES), required=True)
    parser.add_argument("--db-uri", help="SQLAlchemy URI of the MLflow database (mlflow side)")
    args = parser.parse_args()
    if args.side == "portal":
        emit(_portal(args.size))
    else:
        if args.side == "mlflow-runs":
            setup_django()  # for the feature version hashes (catalog.services.features)
        emit(_mlflow(args.size, args.db_uri, runs=args.side == "mlflow-runs"))


if __name__ == "__main__":
    main()
