"""The embedded git server: git's smart HTTP protocol, served by ``git http-backend`` run as CGI from a view.

``/git/<team>/<name>.git/...``. Every request needs HTTP Basic (or Bearer) authentication with a portal
API token as the password (any user name): cloning and fetching need the ``read`` scope and a user who
reads the catalog; pushing needs the ``write`` scope and membership of the owning team (or platform admin).
The portal's own pushes use a short-lived credential valid for one repository. Only the smart protocol's
three endpoints are served; CSRF checks are off for them alone (they take no cookies, only tokens).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from catalog.permissions import can_read_catalog
from portal.context import audit_context
from portal.models import Membership, Scope, Team
from portal.permissions import is_platform_admin
from portal.services.audit import audit_record
from portal.services.tokens import token_authenticate
from scaffolder.services.git_provider import PUSH_USER, EmbeddedGitProvider, push_credential_repo

logger = logging.getLogger(__name__)
REALM = 'Basic realm="ML Platform Portal git (user: anything, password: an API token)", charset="UTF-8"'
CHUNK = 64 * 1024


@dataclass
class _Caller:
    username: str
    user: object | None  # None for the portal's own push credential


def _text(status: int, message: str, **headers: str) -> HttpResponse:
    response = HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")
    for key, value in headers.items():
        response[key.replace("_", "-")] = value
    return response


def _credentials(request: HttpRequest) -> tuple[str, str] | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return "", value.strip()
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


def _authorize(request: HttpRequest, team: Team, repo: str, *, write: bool) -> _Caller | HttpResponse:
    creds = _credentials(request)
    if creds is None:
        return _text(401, "Sign in with an API token as the password.", WWW_Authenticate=REALM)
    username, secret = creds
    if username == PUSH_USER:
        if push_credential_repo(secret) == f"{team.slug}/{repo}":
            return _Caller(PUSH_USER, None)
        return _text(401, "Invalid or expired credential.", WWW_Authenticate=REALM)
    token = token_authenticate(secret)
    if token is None or not token.user.is_active:
        return _text(401, "Invalid, expired or revoked token.", WWW_Authenticate=REALM)
    user = token.user
    scope = Scope.WRITE if write else Scope.READ
    if scope not in token.granted_scopes():
        return _text(403, f"This token lacks the '{scope}' scope needed to {'push' if write else 'clone'}.")
    if write:
        if not (is_platform_admin(user) or Membership.objects.filter(user=user, team=team).exists()):
            return _text(403, f"Only members of team {team.slug} push to its repositories.")
    elif not can_read_catalog(user):
        return _text(403, "Cloning follows catalog visibility: it is for members of a team or holders of a role.")
    return _Caller(user.username, user)


@csrf_exempt
def git_index(request: HttpRequest) -> HttpResponse:
    """Answers so clients (and the scaffolder's health check) know the server is up."""
    return _text(200, f"The portal's git server. Clone with: git clone {settings.GIT_SERVER_URL}/<team>/<name>.git")


@csrf_exempt
def git_smart_http(request: HttpRequest, team: str, repo: str, rest: str):
    service = request.GET.get("service", "") if rest == "info/refs" else rest
    if service not in ("git-upload-pack", "git-receive-pack"):
        return _text(403, "Only git's smart HTTP protocol is served; use git 1.6.6 or newer.")
    if request.method != ("GET" if rest == "info/refs" else "POST"):
        return _text(405, "Method not allowed.")
    write = service == "git-receive-pack"
    owner = Team.objects.filter(slug=team).first()
    if owner is None:
        return _text(404, f"There is no team {team}.")
    caller = _authorize(request, owner, repo, write=write)
    if isinstance(caller, HttpResponse):
        return caller
    provider = EmbeddedGitProvider()
    if not provider.path(team=team, name=repo).is_dir():
        return _text(404, f"There is no repository {team}/{repo}.")
    max_bytes = int(settings.GIT_MAX_PUSH_MB) * 1024 * 1024
    length = request.META.get("CONTENT_LENGTH") or ""
    if write and length.isdigit() and int(length) > max_bytes:
        return _text(413, f"Pushes are limited to {settings.GIT_MAX_PUSH_MB} MB.")
    if not _can_read_chunked(request):
        return _text(411, "This server cannot read chunked uploads: run `git config http.postBuffer 524288000`.")
    return _run_backend(request, provider, team, repo, rest, caller, write=write, max_bytes=max_bytes)


def _backend_env(request: HttpRequest, provider: EmbeddedGitProvider, path_info: str, caller: _Caller, write: bool):
    meta = request.META
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "GIT_PROJECT_ROOT": str(provider.root.resolve()),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "HOME": str(provider.root.resolve()),
        "PATH_INFO": path_info,
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": meta.get("QUERY_STRING", ""),
        "CONTENT_TYPE": meta.get("CONTENT_TYPE", ""),
        "REMOTE_ADDR": meta.get("REMOTE_ADDR", ""),
        "GIT_HTTP_MAX_REQUEST_BUFFER": "10M",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "receive.maxInputSize",
        "GIT_CONFIG_VALUE_0": str(int(settings.GIT_MAX_PUSH_MB) * 1024 * 1024),
    }
    if meta.get("CONTENT_LENGTH") and not _chunked(request):
        env["CONTENT_LENGTH"] = meta["CONTENT_LENGTH"]
    if meta.get("HTTP_CONTENT_ENCODING"):
        env["HTTP_CONTENT_ENCODING"] = meta["HTTP_CONTENT_ENCODING"]
    if meta.get("HTTP_GIT_PROTOCOL"):
        env["GIT_PROTOCOL"] = meta["HTTP_GIT_PROTOCOL"]
    if write:  # http-backend serves receive-pack only to an authenticated REMOTE_USER
        env["REMOTE_USER"] = caller.username
    return env


def _chunked(request: HttpRequest) -> bool:
    return "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()


def _request_body(request: HttpRequest) -> Iterator[bytes]:
    """The request body as it arrives; git sends large pushes with chunked transfer encoding."""
    if not _chunked(request):
        while chunk := request.read(CHUNK):
            yield chunk
        return
    stream = request.environ["wsgi.input"]
    if request.environ.get("wsgi.input_terminated"):  # the server (gunicorn) already removed the chunking
        while chunk := stream.read(CHUNK):
            yield chunk
        return
    read, readline = _raw_reader(stream)
    while True:  # the development server passes the chunked stream on as it is
        size_line = readline(1024)
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while readline(1024).strip():
                pass
            return
        remaining = size
        while remaining:
            chunk = read(min(remaining, CHUNK))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk
        readline(1024)


def _raw_reader(stream):
    """Django's development server caps its input at Content-Length (none, when chunked): read beneath the cap."""
    from django.core.handlers.wsgi import LimitedStream

    if isinstance(stream, LimitedStream):
        return getattr(stream, "_read", None), getattr(stream, "_readline", None)
    return stream.read, stream.readline


def _can_read_chunked(request: HttpRequest) -> bool:
    if not _chunked(request) or request.environ.get("wsgi.input_terminated"):
        return True
    read, readline = _raw_reader(request.environ["wsgi.input"])
    return read is not None and readline is not None


def _run_backend(request, provider, team, repo, rest, caller: _Caller, *, write: bool, max_bytes: int):
    env = _backend_env(request, provider, f"/{team}/{repo}.git/{rest}", caller, write)
    proc = subprocess.Popen(
        [settings.CATALOG_GIT_BINARY, "http-backend"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    errors: list[bytes] = []

    def feed() -> None:
        sent = 0
        try:
            for chunk in _request_body(request):
                sent += len(chunk)
                if sent > max_bytes:
                    break
                proc.stdin.write(chunk)
        except (OSError, ValueError):
            pass
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    def drain() -> None:
        errors.append(proc.stderr.read(64 * 1024))
        proc.stderr.read()

    feeder = threading.Thread(target=feed, daemon=True)
    reader = threading.Thread(target=drain, daemon=True)
    feeder.start()
    reader.start()
    head = b""
    while b"\r\n\r\n" not in head and b"\n\n" not in head:
        data = proc.stdout.read1(CHUNK)
        if not data:
            break
        head += data
        if len(head) > 64 * 1024:
            break
    separator = b"\r\n\r\n" if b"\r\n\r\n" in head else b"\n\n"
    raw_headers, _, body = head.partition(separator)
    status, headers = 200, {}
    for line in raw_headers.decode("latin-1").splitlines():
        key, _, value = line.partition(":")
        if key.lower() == "status":
            status = int(value.strip().split()[0] or 200)
        elif key:
            headers[key.strip()] = value.strip()
    if not raw_headers:
        proc.kill()
        proc.wait()
        reader.join(timeout=5)
        message = b"".join(errors).decode("utf-8", "replace").strip()
        logger.warning("git http-backend failed for %s/%s: %s", team, repo, message)
        return _text(502, "The git server failed: " + (message[-300:] or "no output"))

    def stream() -> Iterator[bytes]:
        try:
            if body:
                yield body
            while data := proc.stdout.read1(CHUNK):
                yield data
        finally:
            proc.stdout.close()  # a client that went away leaves git writing into a closed pipe: it stops
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            feeder.join(timeout=5)
            reader.join(timeout=5)
            if write and rest == "git-receive-pack" and proc.returncode == 0:
                _audit_push(request, caller, team, repo)

    response = StreamingHttpResponse(stream(), status=status, content_type=headers.pop("Content-Type", None))
    for key, value in headers.items():
        if key.lower() in ("cache-control", "expires", "pragma"):
            response[key] = value
    return response


def _audit_push(request: HttpRequest, caller: _Caller, team: str, repo: str) -> None:
    with audit_context(user=caller.user, client_ip=request.META.get("REMOTE_ADDR", "")):
        try:
            audit_record(
                action="git.push",
                object_type="git_repository",
                object_id=f"{team}/{repo}",
                after={"by": caller.username},
            )
        except Exception:  # the push has happened; a missing audit line must not turn it into an error
            logger.exception("could not record the push to %s/%s", team, repo)
