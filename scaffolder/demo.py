"""The golden paths as git repositories, registered as templates (for `make demo`, tests and benchmarks)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError

from scaffolder.models import Template
from scaffolder.services.templates import template_register, template_update

GOLDEN_PATHS = Path(__file__).resolve().parent / "golden_paths"
TITLES = {
    "ml-project": ("ML project", "Golden path: train, test and register a model"),
    "batch-scoring": ("Batch scoring job", "Golden path: score a table with a registered model on a schedule"),
}
GIT_IDENTITY = ["-c", "user.name=Portal demo", "-c", "user.email=demo@example.com", "-c", "commit.gpgsign=false"]


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *GIT_IDENTITY, *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"git {args[0]} failed in {repo}: {done.stderr.strip()}")
    return done.stdout


def directory_repo(source: Path, repo: Path, message: str = "Template") -> str:
    """Make ``repo`` a git repository holding exactly ``source``'s files; commit if anything changed."""
    repo.mkdir(parents=True, exist_ok=True)
    if not (repo / ".git").exists():
        _git(repo, "init", "--quiet", "--initial-branch=main")
    for child in repo.iterdir():
        if child.name != ".git":
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    shutil.copytree(source, repo, dirs_exist_ok=True, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    if _git(repo, "status", "--porcelain").strip():
        _git(repo, "add", "--all")
        _git(repo, "commit", "--quiet", "-m", message)
    return _git(repo, "rev-parse", "HEAD").strip()


def golden_path_repos_dir() -> Path:
    return Path(settings.VAR_DIR) / "scaffolder-templates"


def seed_golden_paths(*, admin, repos_dir: Path | None = None) -> list[tuple[Template, str]]:
    """Register (or update) every golden path as a file:// template; returns (template, what happened)."""
    repos_dir = repos_dir or golden_path_repos_dir()
    done = []
    for source in sorted(p for p in GOLDEN_PATHS.iterdir() if (p / "cookiecutter.json").exists()):
        repo = repos_dir / source.name
        directory_repo(source, repo, f"Golden path {source.name}")
        title = TITLES.get(source.name, (source.name, ""))[0]
        existing = Template.objects.filter(url=f"file://{repo}", ref="", subdirectory="").first()
        if existing is None:
            template = template_register(actor=admin, url=str(repo), title=title)
            done.append((template, f"registered at {template.commit[:12]}"))
        else:
            try:
                template, changed = template_update(actor=admin, template=existing)
            except ValidationError as exc:
                done.append((existing, f"not updated: {' '.join(exc.messages)}"))
                continue
            done.append((template, f"updated to {template.commit[:12]}" if changed else "unchanged"))
    return done
