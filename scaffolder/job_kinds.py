"""Job kind of the scaffolder: ``scaffolder.run`` (imported from ScaffolderConfig.ready)."""

from __future__ import annotations

from portal.services.jobs import JobContext, job_handler
from scaffolder.services.runs import KIND, run_execute


@job_handler(KIND)
def scaffold(ctx: JobContext, *, run_id: int) -> dict:
    """Render a template in isolation, push it to a new repository, register it, create its experiment."""
    return run_execute(ctx, run_id=run_id)
