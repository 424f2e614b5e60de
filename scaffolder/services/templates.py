"""Templates: register a cookiecutter template from git (pinned to a commit), update it, check it out for renders.

Fetching reuses the catalog's safe git access (catalog.services.git_source): the same URL rules as
descriptor locations (scheme allow-list, no credentials, public addresses only, pinned for git), git from
an argument list with no prompts, no redirects, no hooks and a timeout. Files are read from git's objects
and exported with ``git archive`` into a tar extracted with the ``data`` filter, so a template cannot place
links or files outside its directory.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.services.git_source import (
    CheckedUrl,
    LocationRefused,
    _git,
    _git_env,
    _is_ip,
    _last_lines,
    location_url_check,
)
from portal.models import Team
from portal.permissions import is_platform_admin, require
from portal.services.audit import audit_record, snapshot
from scaffolder import parameters
from scaffolder.models import Template

_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_SUBDIR_RE = re.compile(r"^[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*$")
MAX_PREVIEW_FILES = 300
AUDIT_FIELDS = ["title", "url", "ref", "subdirectory", "commit", "team", "description", "tags"]


def _clean_ref(ref: str) -> str:
    ref = (ref or "").strip()
    if ref and (not _REF_RE.match(ref) or ".." in ref or ref.endswith((".lock", "/", "."))):
        raise ValidationError({"ref": "Give a branch, tag or full commit id (letters, digits, . _ / -)."})
    return ref


def _clean_subdirectory(subdirectory: str) -> str:
    subdirectory = (subdirectory or "").strip().strip("/")
    if subdirectory and (not _SUBDIR_RE.match(subdirectory) or ".." in subdirectory.split("/")):
        raise ValidationError({"subdirectory": "Give a relative path inside the repository, without '..'."})
    return subdirectory


def _clean_tags(tags: Any) -> list[str]:
    if tags in (None, ""):
        return []
    if isinstance(tags, str):
        tags = tags.split(",")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ValidationError({"tags": "Give the tags as a list of words."})
    return sorted({t.strip() for t in tags if t.strip()})


# --- git -----------------------------------------------------------------------------------------


def _clone_options(checked: CheckedUrl) -> list[str]:
    options = ["-c", "http.followRedirects=false", "-c", "credential.helper=", "-c", "core.askPass="]
    if checked.scheme in ("http", "https") and checked.addresses and not _is_ip(checked.host):
        port = checked.port or (443 if checked.scheme == "https" else 80)
        pinned = ",".join(f"[{a}]" if ":" in a else a for a in checked.addresses)
        options += ["-c", f"http.curloptResolve={checked.host}:{port}:{pinned}"]
    return options


def _fetch(checked: CheckedUrl, ref: str, dest: Path, home: str) -> str:
    """Clone without a checkout; returns the commit ``ref`` names (HEAD when empty)."""
    env = _git_env(home)
    timeout = float(settings.CATALOG_LOCATION_CLONE_TIMEOUT_SECONDS)
    flags = ["--quiet", "--no-tags", "--no-checkout", "--template="]
    if not _SHA_RE.match(ref):
        flags += ["--depth", "1", "--single-branch"] + (["--branch", ref] if ref else [])
    result = _git([*_clone_options(checked), "clone", *flags, "--", checked.url, str(dest)], env=env, timeout=timeout)
    if result.returncode != 0:
        message = _last_lines(result.stderr)
        if ref and ("not found in upstream" in message or "Remote branch" in message):
            raise ValidationError({"ref": f"The repository has no branch or tag {ref!r}."})
        raise LocationRefused(f"git clone failed: {message}")
    wanted = f"{ref}^{{commit}}" if _SHA_RE.match(ref) else "HEAD"
    head = _git(["-C", str(dest), "rev-parse", "--verify", "--quiet", wanted], env=env, timeout=30)
    if head.returncode != 0:
        if _SHA_RE.match(ref):
            raise ValidationError({"ref": f"The repository has no commit {ref}."})
        raise LocationRefused(
            "No commits found: the URL is not a git repository, or the repository is empty (git saw no branches)."
        )
    return head.stdout.decode().strip()


def _blob(dest: Path, commit: str, path: str, home: str, max_bytes: int) -> bytes | None:
    env = _git_env(home)
    spec = f"{commit}:{path}"
    kind = _git(["-C", str(dest), "cat-file", "-t", spec], env=env, timeout=30)
    if kind.returncode != 0 or kind.stdout.strip() != b"blob":
        return None
    size = _git(["-C", str(dest), "cat-file", "-s", spec], env=env, timeout=30)
    if int(size.stdout.strip() or 0) > max_bytes:
        raise ValidationError({"subdirectory": f"{path} is larger than {max_bytes // 1024} KiB."})
    return _git(["-C", str(dest), "cat-file", "blob", spec], env=env, timeout=30).stdout


def _tree(dest: Path, commit: str, subdirectory: str, home: str) -> list[str]:
    spec = f"{commit}:{subdirectory}" if subdirectory else commit
    listing = _git(["-C", str(dest), "ls-tree", "-r", "-z", "--name-only", spec], env=_git_env(home), timeout=60)
    if listing.returncode != 0:
        raise LocationRefused(f"Could not list the template's files: {_last_lines(listing.stderr)}")
    return sorted(p.decode("utf-8", "replace") for p in listing.stdout.split(b"\0") if p)


def _export(dest: Path, commit: str, subdirectory: str, out: Path, home: str) -> None:
    """``git archive`` of the template directory, extracted with tarfile's ``data`` filter (no escapes)."""
    args = ["-C", str(dest), "archive", "--format=tar", commit]
    if subdirectory:
        args += ["--", subdirectory]
    result = _git(args, env=_git_env(home), timeout=120)
    if result.returncode != 0:
        raise LocationRefused(f"Could not export the template: {_last_lines(result.stderr)}")
    staging = out.parent / f".{out.name}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(result.stdout)) as tar:
            tar.extractall(staging, filter="data")
        source = staging / subdirectory if subdirectory else staging
        try:
            os.rename(source, out)
        except OSError:  # another worker exported it first
            if not out.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass
class Fetched:
    commit: str
    config: dict[str, Any]
    config_text: str
    name_variable: str
    files: list[str]


def _inspect(dest: Path, commit: str, subdirectory: str, home: str) -> Fetched:
    field = "subdirectory" if subdirectory else "url"
    where = f"{subdirectory}/" if subdirectory else "the repository's root"
    path = posixpath.join(subdirectory, "cookiecutter.json") if subdirectory else "cookiecutter.json"
    raw = _blob(dest, commit, path, home, parameters.MAX_CONFIG_BYTES)
    if raw is None:
        raise ValidationError({field: f"There is no cookiecutter.json in {where} at commit {commit[:12]}."})
    try:
        config = parameters.load_config(raw)
        name_variable = parameters.detect_name_variable(config)
    except parameters.TemplateInvalid as exc:
        raise ValidationError({field: str(exc)}) from exc
    names = _tree(dest, commit, subdirectory, home)
    top = sorted({n.split("/", 1)[0] for n in names if "/" in n and "{{" in n.split("/", 1)[0]})
    project_dirs = [d for d in top if "cookiecutter" in d]
    if not project_dirs:
        raise ValidationError({field: "The template has no project directory such as {{cookiecutter.project_slug}}/."})
    files = [n for n in names if n.startswith(project_dirs[0] + "/")][:MAX_PREVIEW_FILES]
    return Fetched(commit, config, raw.decode("utf-8"), name_variable, files)


def _cache_dir(commit: str, subdirectory: str) -> Path:
    key = hashlib.sha256(subdirectory.encode()).hexdigest()[:8]
    return Path(settings.SCAFFOLDER_WORK_DIR) / "templates" / f"{commit}-{key}"


def _read_source(*, url: str, ref: str, subdirectory: str, user) -> tuple[str, Fetched]:
    checked = location_url_check(url, user=user)
    with tempfile.TemporaryDirectory(prefix="portal-template-") as tmp:
        try:
            commit = _fetch(checked, ref, Path(tmp) / "repo", tmp)
            fetched = _inspect(Path(tmp) / "repo", commit, subdirectory, tmp)
            cache = _cache_dir(commit, subdirectory)
            if not cache.is_dir():
                _export(Path(tmp) / "repo", commit, subdirectory, cache, tmp)
        except LocationRefused as exc:
            raise ValidationError({"url": str(exc)}) from exc
    return checked.url, fetched


# --- Services ---------------------------------------------------------------------------------------


def _audit_json(template: Template) -> dict[str, Any]:
    data = snapshot(template, fields=[f for f in AUDIT_FIELDS if f != "team"]) or {}
    return data | {"team": template.team.slug if template.team else None}


def template_register(
    *,
    actor,
    url: str,
    title: str,
    ref: str = "",
    subdirectory: str = "",
    description: str = "",
    tags: Any = None,
    team: Team | None = None,
) -> Template:
    """Register a template (platform admins): fetch it, read cookiecutter.json, pin the commit."""
    require(is_platform_admin(actor), "Only platform admins register templates: a template's hooks are code.")
    title = (title or "").strip()
    if not title:
        raise ValidationError({"title": "Give the template a title."})
    ref, subdirectory, tags = _clean_ref(ref), _clean_subdirectory(subdirectory), _clean_tags(tags)
    normalised, fetched = _read_source(url=url, ref=ref, subdirectory=subdirectory, user=actor)
    existing = Template.objects.filter(url=normalised, ref=ref, subdirectory=subdirectory).first()
    if existing:
        raise ValidationError({"url": f"This template is already registered (#{existing.pk}, {existing.title})."})
    template = Template(
        title=title,
        description=(description or "").strip() or str(fetched.config.get("_description", "")),
        tags=tags or _clean_tags(fetched.config.get("_tags")),
        team=team,
        url=normalised,
        ref=ref,
        subdirectory=subdirectory,
        commit=fetched.commit,
        cookiecutter_json=fetched.config_text,
        name_variable=fetched.name_variable,
        files=fetched.files,
        created_by=actor,
        pinned_at=timezone.now(),
    )
    template.full_clean()
    try:
        with transaction.atomic():
            template.save()
            audit_record(action="scaffolder_template.create", obj=template, after=_audit_json(template))
    except IntegrityError as exc:
        raise ValidationError({"url": "This template is already registered."}) from exc
    return template


def template_update(*, actor, template: Template) -> tuple[Template, bool]:
    """Fetch the template's ref again and pin the commit it names now (platform admins). Returns (template, changed)."""
    require(is_platform_admin(actor), "Only platform admins update templates.")
    _, fetched = _read_source(url=template.url, ref=template.ref, subdirectory=template.subdirectory, user=actor)
    if fetched.commit == template.commit:
        return template, False
    before = _audit_json(template)
    with transaction.atomic():
        template.commit = fetched.commit
        template.cookiecutter_json = fetched.config_text
        template.name_variable = fetched.name_variable
        template.files = fetched.files
        template.pinned_at = timezone.now()
        template.save()
        audit_record(action="scaffolder_template.update", obj=template, before=before, after=_audit_json(template))
    return template, True


def template_checkout(template: Template, commit: str | None = None) -> Path:
    """A read-only copy of the template directory at ``commit`` (the pinned one by default), cached."""
    commit = commit or template.commit
    cache = _cache_dir(commit, template.subdirectory)
    if cache.is_dir():
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    try:
        checked = location_url_check(template.url, user=template.created_by)
    except ValidationError as exc:
        raise LocationRefused(" ".join(exc.messages)) from exc
    with tempfile.TemporaryDirectory(prefix="portal-template-") as tmp:
        try:
            _fetch(checked, commit, Path(tmp) / "repo", tmp)
        except ValidationError as exc:
            raise LocationRefused(f"The template's commit {commit[:12]} is gone: {' '.join(exc.messages)}") from exc
        _export(Path(tmp) / "repo", commit, template.subdirectory, cache, tmp)
    return cache
