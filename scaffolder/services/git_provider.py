"""Where scaffolded repositories go: one small interface, and the embedded git server behind it.

The embedded provider keeps bare repositories in ``GIT_REPOS_DIR`` (``<team>/<name>.git``), served over
git's smart HTTP protocol by the portal itself at ``GIT_SERVER_URL`` (``/git/``, see scaffolder.git_http).
The portal pushes there over HTTP like any client, with a short-lived credential valid for that one
repository. A GitHub or GitLab provider would implement the same methods with their APIs.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path
from typing import Protocol

import requests
from django.conf import settings
from django.core import signing
from django.core.exceptions import ImproperlyConfigured

from catalog.services.git_source import _git_env, _last_lines

PUSH_USER = "portal-run"
PUSH_SALT = "scaffolder.git-push"
PUSH_MAX_AGE_SECONDS = 900


class GitServerError(Exception):
    """The git server refused or did not answer; the message says which and why."""


class GitProvider(Protocol):
    name: str

    def check(self) -> None:
        """Raise GitServerError unless the server answers."""

    def exists(self, *, team: str, name: str) -> bool: ...

    def create_repo(self, *, team: str, name: str, run_id: int, description: str = "") -> str:
        """Create an empty repository (or return the one this run created before); returns the clone URL."""

    def delete_repo(self, *, team: str, name: str) -> None: ...

    def clone_url(self, *, team: str, name: str) -> str: ...

    def push(self, *, local: Path, team: str, name: str, branch: str, run_id: int) -> None: ...

    def head(self, *, team: str, name: str, branch: str) -> str | None:
        """The commit ``branch`` points to on the server, or None."""

    def read_file(self, *, team: str, name: str, path: str, branch: str = "main") -> bytes | None:
        """A file of the branch's head (None if missing)."""


def push_credential(*, team: str, name: str, run_id: int) -> str:
    return signing.dumps({"repo": f"{team}/{name}", "run": run_id}, salt=PUSH_SALT, compress=True)


def push_credential_repo(secret: str) -> str | None:
    """The repository a run's push credential is valid for (None when invalid or expired)."""
    try:
        data = signing.loads(secret, salt=PUSH_SALT, max_age=PUSH_MAX_AGE_SECONDS)
    except signing.BadSignature:
        return None
    return data.get("repo") if isinstance(data, dict) else None


class EmbeddedGitProvider:
    name = "embedded"

    def __init__(self, root: Path | None = None, base_url: str | None = None):
        self.root = Path(root or settings.GIT_REPOS_DIR)
        self.base_url = (base_url or settings.GIT_SERVER_URL).rstrip("/")

    def path(self, *, team: str, name: str) -> Path:
        path = (self.root / team / f"{name}.git").resolve()
        if path.parent.parent != self.root.resolve():
            raise GitServerError(f"Refused repository path {team}/{name}.")
        return path

    def check(self) -> None:
        try:
            answer = requests.get(self.base_url + "/", timeout=5)
        except requests.RequestException as exc:
            raise GitServerError(f"The git server at {self.base_url}/ does not answer: {_reason(exc)}.") from exc
        if answer.status_code != 200:
            raise GitServerError(f"The git server at {self.base_url}/ answered HTTP {answer.status_code}.")

    def exists(self, *, team: str, name: str) -> bool:
        return self.path(team=team, name=name).exists()

    def clone_url(self, *, team: str, name: str) -> str:
        return f"{self.base_url}/{team}/{name}.git"

    def create_repo(self, *, team: str, name: str, run_id: int, description: str = "") -> str:
        path = self.path(team=team, name=name)
        if path.exists():
            owner = _run_git(["--git-dir", str(path), "config", "--get", "portal.run"], check=False).strip()
            if owner != str(run_id):
                raise GitServerError(f"The repository {team}/{name} already exists on the git server.")
            return self.clone_url(team=team, name=name)
        path.parent.mkdir(parents=True, exist_ok=True)
        _run_git(["init", "--quiet", "--bare", "--initial-branch=main", "--template=", str(path)])
        # git http-backend accepts pushes only with REMOTE_USER set, which the portal sets after checking the token.
        for key, value in (("portal.run", str(run_id)), ("receive.fsckObjects", "true")):
            _run_git(["--git-dir", str(path), "config", key, value])
        (path / "description").write_text((description or f"{team}/{name}")[:500] + "\n", encoding="utf-8")
        return self.clone_url(team=team, name=name)

    def delete_repo(self, *, team: str, name: str) -> None:
        path = self.path(team=team, name=name)
        if path.exists():
            shutil.rmtree(path)

    def push(self, *, local: Path, team: str, name: str, branch: str, run_id: int) -> None:
        secret = push_credential(team=team, name=name, run_id=run_id)
        token = base64.b64encode(f"{PUSH_USER}:{secret}".encode()).decode()
        # The credential travels in the environment (readable only by this user), not on the command line.
        env = {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {token}",
            "GIT_ALLOW_PROTOCOL": "http:https",
        }
        url = self.clone_url(team=team, name=name)
        try:
            _run_git(
                ["-C", str(local), "-c", "http.followRedirects=false", "push", "--quiet", url, f"{branch}:{branch}"],
                env=env,
            )
        except GitServerError as exc:
            raise GitServerError(f"Pushing to {url} failed: {exc}") from exc

    def head(self, *, team: str, name: str, branch: str) -> str | None:
        path = self.path(team=team, name=name)
        if not path.exists():
            return None
        out = _run_git(
            ["--git-dir", str(path), "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"], check=False
        )
        return out.strip() or None

    def read_file(self, *, team: str, name: str, path: str, branch: str = "main") -> bytes | None:
        repo = self.path(team=team, name=name)
        if not repo.exists():
            return None
        done = subprocess.run(
            [settings.CATALOG_GIT_BINARY, "--git-dir", str(repo), "cat-file", "blob", f"refs/heads/{branch}:{path}"],
            env=_git_env(str(settings.SCAFFOLDER_WORK_DIR)),
            capture_output=True,
            timeout=float(settings.GIT_TIMEOUT_SECONDS),
        )
        return done.stdout if done.returncode == 0 else None


def _reason(exc: Exception) -> str:
    text = str(exc)
    for known in ("Connection refused", "Name or service not known", "timed out", "No route to host"):
        if known.lower() in text.lower():
            return known.lower()
    return text[:200]


def _run_git(args: list[str], *, env: dict[str, str] | None = None, check: bool = True) -> str:
    home = str(Path(settings.SCAFFOLDER_WORK_DIR))
    os.makedirs(home, exist_ok=True)
    full_env = _git_env(home) | (env or {})
    try:
        done = subprocess.run(
            [settings.CATALOG_GIT_BINARY, *args],
            env=full_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=float(settings.GIT_TIMEOUT_SECONDS),
        )
    except subprocess.TimeoutExpired as exc:
        raise GitServerError(f"git {args[0]} took longer than {settings.GIT_TIMEOUT_SECONDS} s.") from exc
    if check and done.returncode != 0:
        raise GitServerError(_last_lines(done.stderr))
    return done.stdout.decode("utf-8", "replace")


def get_provider() -> GitProvider:
    if settings.GIT_PROVIDER == "embedded":
        return EmbeddedGitProvider()
    raise ImproperlyConfigured(f"GIT_PROVIDER={settings.GIT_PROVIDER!r}: only 'embedded' is available.")
