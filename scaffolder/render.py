"""The render: plain cookiecutter (``--no-input`` with the given values, hooks on), nothing else.

Runs as its own program inside the sandbox (see :mod:`scaffolder.sandbox`), never inside the portal:
``python -I render.py request.json``. The request names the template directory, the values, the
output directory and where to write the result: ``{"ok": true, "project": <dir name>, "context": {…}}``
or ``{"ok": false, "kind": "hook" | "template" | "error", "message": …}``. Hook output goes to
stdout/stderr, which the portal keeps for the job log.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback


def _write(path: str, result: dict) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(result, fh, default=str)


class _MessageOnly(logging.Formatter):
    def formatException(self, ei) -> str:  # noqa: N802 (logging's name)
        return ""

    def format(self, record: logging.LogRecord) -> str:
        record.exc_info, record.exc_text = None, None
        return super().format(record)


def _quiet_logging() -> None:
    """cookiecutter's warnings as one line each; its tracebacks would bury the hook's own output."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_MessageOnly("cookiecutter: %(message)s"))
    log = logging.getLogger("cookiecutter")
    log.addHandler(handler)
    log.setLevel(logging.WARNING)
    log.propagate = False


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as fh:
        request = json.load(fh)
    home = request["home"]
    os.makedirs(home, exist_ok=True)
    config_file = os.path.join(home, "cookiecutter-config.yaml")
    with open(config_file, "w", encoding="utf-8") as fh:
        fh.write(f'cookiecutters_dir: "{home}/cookiecutters"\nreplay_dir: "{home}/replay"\n')

    _quiet_logging()
    from cookiecutter import exceptions
    from cookiecutter.main import cookiecutter

    template_dir = request["template_dir"]
    try:
        project_dir = cookiecutter(
            template_dir,
            no_input=True,
            extra_context=request["extra_context"],
            output_dir=request["output_dir"],
            config_file=config_file,
            accept_hooks=True,
        )
    except exceptions.FailedHookException as exc:
        _write(request["result"], {"ok": False, "kind": "hook", "message": f"A template hook failed: {exc}"})
        return 1
    except exceptions.UndefinedVariableInTemplate as exc:
        message = f"{exc.message}: {exc.error.message}"
        _write(request["result"], {"ok": False, "kind": "template", "message": message})
        return 1
    except exceptions.CookiecutterException as exc:
        _write(request["result"], {"ok": False, "kind": "template", "message": f"{type(exc).__name__}: {exc}"})
        return 1
    except Exception as exc:
        traceback.print_exc()
        _write(request["result"], {"ok": False, "kind": "error", "message": f"{type(exc).__name__}: {exc}"})
        return 1
    name = os.path.basename(os.path.abspath(template_dir))
    with open(os.path.join(home, "replay", f"{name}.json"), encoding="utf-8") as fh:
        context = json.load(fh).get("cookiecutter", {})
    for key in ("_template", "_output_dir", "_repo_dir", "_checkout"):
        context.pop(key, None)
    project = os.path.relpath(os.path.abspath(project_dir), os.path.abspath(request["output_dir"]))
    _write(request["result"], {"ok": True, "project": project, "context": context})
    return 0


if __name__ == "__main__":
    sys.exit(main())
