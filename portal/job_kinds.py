"""Job kinds of the portal itself."""

from __future__ import annotations

import time

from portal.health import CHECKS, OK
from portal.services.jobs import JobContext, job_handler


@job_handler("portal.selftest")
def selftest(ctx: JobContext, *, pause_seconds: float = 0.5, require: list[str] | None = None) -> dict:
    """Check each backing service in turn; fail if a required one is down."""
    require = list(require or ["database"])
    results = {}
    for name, check in CHECKS.items():
        with ctx.step(f"Check {name}"):
            ctx.log(f"Checking {name}…")
            result = check()
            results[name] = result["status"]
            detail = result.get("error") or f"{result.get('latency_ms', '–')} ms"
            ctx.log(f"{name}: {result['status']} ({detail})", level="info" if result["status"] == OK else "warning")
            if result["status"] != OK and name in require:
                raise RuntimeError(f"{name} is {result['status']}: {result.get('error', '')}")
            time.sleep(pause_seconds)
    with ctx.step("Summarise"):
        down = [n for n, s in results.items() if s != OK]
        ctx.log("All services answer." if not down else f"Not answering: {', '.join(down)}.")
    return {"checks": results}
