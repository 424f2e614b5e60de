"""Job kinds of the catalog."""

from __future__ import annotations

from django.conf import settings

from portal.services.jobs import JobContext, job_handler

SYNC_MLFLOW = "catalog.sync_mlflow"


@job_handler(SYNC_MLFLOW)
def sync_mlflow(ctx: JobContext, *, full: bool = False) -> dict:
    """Read MLflow's registry into the catalog (incremental unless ``full``)."""
    # Imported here: the MLflow client takes seconds to import, and every manage.py command loads job kinds.
    from catalog.services.mlflow_sync import mlflow_sync
    from catalog.signals import mlflow_synced

    result = mlflow_sync(ctx=ctx, tracking_uri=settings.MLFLOW_TRACKING_URI, full=bool(full))
    mlflow_synced.send(sender=SYNC_MLFLOW, result=result)  # e.g. governance compares aliases with what it applied
    return result
