"""The environment manifest repository (seed 002's GitOps "environment manifest repositories").

``environments/<env>.yaml`` holds ``models: {<name>: {version, run_id,
promotion_id, approved_by, approved_at}}``. Only the apply job writes here:
clone, change one entry, commit with the promotion in the message, push. A
write that changes nothing makes no commit, so a retried apply is idempotent.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import yaml
from django.conf import settings

GIT_TIMEOUT = 60
HEADER = "# Written by the portal's promotion workflow; do not edit by hand.\n"
AUTHOR = {"GIT_AUTHOR_NAME": "ML Platform Portal", "GIT_AUTHOR_EMAIL": "portal@localhost"}


class ManifestUnavailable(Exception):
    """The manifest repository cannot be reached or written (retried by the apply job)."""


def _git(*args: str, cwd: Path | None = None) -> str:
    env = {
        **os.environ,
        **AUTHOR,
        "GIT_COMMITTER_NAME": AUTHOR["GIT_AUTHOR_NAME"],
        "GIT_COMMITTER_EMAIL": AUTHOR["GIT_AUTHOR_EMAIL"],
        "GIT_TERMINAL_PROMPT": "0",
    }
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=GIT_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ManifestUnavailable(f"git {args[0]} timed out after {GIT_TIMEOUT} s") from exc
    if done.returncode != 0:
        raise ManifestUnavailable(f"git {args[0]} failed: {(done.stderr or done.stdout).strip()[-500:]}")
    return done.stdout.strip()


def manifest_repo() -> str:
    """The repository's URL or path; a local path is created (bare) on first use."""
    repo = settings.GOVERNANCE_MANIFEST_REPO
    if "://" not in repo and not Path(repo).exists():
        Path(repo).parent.mkdir(parents=True, exist_ok=True)
        _git("init", "--bare", "--initial-branch=main", repo)
    return repo


def manifest_write(*, environment: str, model: str, entry: dict | None, message: str) -> str:
    """Set (or, with ``entry=None``, remove) one model's entry and push. Returns the commit now at the tip."""
    repo = manifest_repo()
    with tempfile.TemporaryDirectory(prefix="manifest-") as tmp:
        work = Path(tmp) / "repo"
        _git("clone", "--quiet", "--", repo, str(work))
        empty = not _git("branch", "--list", "--all", cwd=work)
        if empty:
            _git("checkout", "--quiet", "-b", "main", cwd=work)
        path = work / "environments" / f"{environment}.yaml"
        data = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
        models = data.setdefault("models", {})
        if entry is None:
            models.pop(model, None)
        else:
            models[model] = entry
        text = HEADER + yaml.safe_dump(data, sort_keys=True)
        if path.exists() and path.read_text() == text:
            return _git("rev-parse", "HEAD", cwd=work)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        _git("add", str(path.relative_to(work)), cwd=work)
        _git("commit", "--quiet", "-m", message, cwd=work)
        _git("push", "--quiet", "origin", "HEAD:main", cwd=work)
        return _git("rev-parse", "HEAD", cwd=work)


def manifest_read(environment: str) -> dict:
    """The current manifest of an environment (empty when there is none yet)."""
    repo = manifest_repo()
    with tempfile.TemporaryDirectory(prefix="manifest-") as tmp:
        work = Path(tmp) / "repo"
        _git("clone", "--quiet", "--depth", "1", "--", repo, str(work))
        path = work / "environments" / f"{environment}.yaml"
        return (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
