"""Reading a git repository safely: URL checks, address pinning, a locked-down ``git``, files from objects.

See docs/descriptors.md. URLs are checked at registration and again before every clone (scheme
allow-list, no credentials, the host must resolve to public addresses, which are then pinned for git);
``git`` runs from an argument list with the URL after ``--``, a protocol allow-list, no prompts, no
redirects, ``--depth 1``, ``--no-checkout`` and a timeout; files are read from git's object database, so
a symlink is seen as a symlink and nothing outside the clone is ever read.
"""

from __future__ import annotations

import ipaddress
import os
import posixpath
import re
import signal
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

from catalog.services import descriptors as dsc
from portal.permissions import is_platform_admin

# Shallow, one branch, no tags, no working tree (files are read from git's objects), no hook templates.
CLONE_FLAGS = ("--quiet", "--depth", "1", "--no-tags", "--single-branch", "--no-checkout", "--template=")
_HOST_RE = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
_SCP_RE = re.compile(r"^[A-Za-z0-9._-]+@(?P<host>[A-Za-z0-9.-]+):[A-Za-z0-9._~-][A-Za-z0-9._~/-]*$")
# RFC 3986 characters only: a backslash or similar is where URL parsers (Python's, curl's) disagree on the host.
_URL_CHARS = re.compile(r"^[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+$")
_PASS_ENV = (
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "SSH_AUTH_SOCK",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_SSL_CAINFO",
)


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


class LocationRefused(Exception):
    """The location cannot be read (URL refused at clone time, git failed, timeout)."""


@dataclass(frozen=True)
class CheckedUrl:
    url: str  # what is stored and handed to git
    scheme: str  # https, http, ssh or file
    host: str = ""
    port: int | None = None
    addresses: tuple[str, ...] = ()


# --- URL checks ---------------------------------------------------------------------------


def location_url_check(url: str, *, user) -> CheckedUrl:
    """Validate a repository URL for ``user``; raises ValidationError({"url": ...}) with the reason."""

    def refuse(message: str) -> ValidationError:
        return ValidationError({"url": message})

    url = (url or "").strip()
    if not url:
        raise refuse("Give the repository's URL, e.g. https://git.example.com/team/repo.git.")
    if len(url) > 500:
        raise refuse("The URL is longer than 500 characters.")
    if not _URL_CHARS.match(url) or url.startswith("-"):
        raise refuse(
            "The URL may hold only URL characters (percent-encode others; no spaces or backslashes) "
            "and may not start with '-'."
        )
    if url.startswith("/"):
        url = "file://" + url
    scp = None if "://" in url else _SCP_RE.match(url)
    if scp:
        scheme, host, port = "ssh", scp["host"].lower(), None
    else:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        allowed = _allowed_schemes()
        if scheme not in allowed:
            usable = " or ".join(f"{s}://" for s in sorted(allowed - {"file"}))
            raise refuse(f"Use an {usable} URL; {scheme or 'this'} URLs are not accepted.")
        if parts.query or parts.fragment:
            raise refuse("The URL may not have a query (?…) or fragment (#…).")
        if scheme == "file":
            return _check_file(parts.netloc, parts.path, user, refuse)
        try:
            host, port = (parts.hostname or ""), parts.port
        except ValueError as exc:
            raise refuse(f"The URL's port is invalid ({exc}).") from exc
        if parts.password or (parts.username and scheme != "ssh"):
            raise refuse("Put no credentials in the URL; the portal clones public or deploy-key repositories.")
        bare = f"[{host}]" if ":" in host else host
        userinfo = f"{parts.username.lower()}@" if parts.username else ""
        if parts.netloc.lower() not in (f"{userinfo}{bare}", f"{userinfo}{bare}:{port}"):
            raise refuse("The URL's host part is ambiguous; write it as https://host[:port]/path.")
    if scheme not in _allowed_schemes():
        raise refuse(f"{scheme} URLs are turned off here (CATALOG_ALLOW_SSH_LOCATIONS).")
    if not host or not (_HOST_RE.match(host) or _is_ip(host)):
        raise refuse("The URL needs a valid host name.")
    addresses = _resolve(host, port or {"https": 443, "http": 80, "ssh": 22}[scheme], refuse)
    return CheckedUrl(url=url, scheme=scheme, host=host, port=port, addresses=addresses)


def _allowed_schemes() -> set[str]:
    allowed = {"https", "file"}
    if _setting("CATALOG_ALLOW_SSH_LOCATIONS", False):
        allowed.add("ssh")
    if _setting("CATALOG_ALLOW_HTTP_LOCATIONS", False):
        allowed.add("http")
    return allowed


def _check_file(netloc: str, path: str, user, refuse: Callable[[str], ValidationError]) -> CheckedUrl:
    if not _setting("CATALOG_ALLOW_FILE_LOCATIONS", False):
        raise refuse("file:// locations are turned off here (CATALOG_ALLOW_FILE_LOCATIONS); use an https:// URL.")
    if user is None or not is_platform_admin(user):
        raise refuse("Only platform admins register file:// or local-path locations; use an https:// URL.")
    if netloc not in ("", "localhost") or not path.startswith("/"):
        raise refuse("A file:// URL needs an absolute path on this server: file:///path/to/repo.")
    path = posixpath.normpath(path)
    if not Path(path).is_dir():
        raise refuse(f"There is no directory {path} on the portal's server.")
    return CheckedUrl(url="file://" + path, scheme="file")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def address_problem(address: str) -> str | None:
    """Why the portal must not connect to ``address`` (None if it is a public unicast address)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in ipaddress.ip_network("64:ff9b::/96"):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return address_problem(str(embedded))
    if str(ip) == "169.254.169.254":
        return "link-local address (the cloud metadata service)"
    for label, hit in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("unspecified", ip.is_unspecified),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("non-public", not ip.is_global),
    ):
        if hit:
            return f"{label} address"
    return None


def _resolve(host: str, port: int, refuse: Callable[[str], Exception]) -> tuple[str, ...]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise refuse(f"The host {host} cannot be resolved ({exc}).") from exc
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not _setting("CATALOG_ALLOW_PRIVATE_HOSTS", False):
        for address in addresses:
            problem = address_problem(address)
            if problem:
                raise refuse(
                    f"{host} resolves to {address}, a {problem}; the portal only clones from public hosts "
                    "(CATALOG_ALLOW_PRIVATE_HOSTS)."
                )
    return addresses


# --- git ------------------------------------------------------------------------------------


def _git(args: list[str], *, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    command = [_setting("CATALOG_GIT_BINARY", "git"), *args]
    try:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # so a timeout kills git's helpers (git-remote-https, ssh) too
        )
    except FileNotFoundError as exc:
        raise LocationRefused(f"git is not installed on the portal's server ({command[0]}).") from exc
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise LocationRefused(f"git {args[0] if args else ''} took longer than {timeout:g} s and was stopped.") from exc
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def _git_env(home: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
    env |= {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": home,
        "LC_ALL": "C",
        "GIT_ALLOW_PROTOCOL": ":".join(sorted(_allowed_schemes())),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "",
        "SSH_ASKPASS": "",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes"),
    }
    return env


def git_clone(checked: CheckedUrl, dest: Path, *, home: str) -> str:
    """Shallow clone without a checkout; returns the commit of HEAD."""
    env = _git_env(home)
    options = ["-c", "http.followRedirects=false", "-c", "credential.helper=", "-c", "core.askPass="]
    if checked.scheme in ("http", "https") and checked.addresses and not _is_ip(checked.host):
        # Pin the addresses we checked, so a second DNS answer cannot point git somewhere internal.
        port = checked.port or (443 if checked.scheme == "https" else 80)
        pinned = ",".join(f"[{a}]" if ":" in a else a for a in checked.addresses)
        options += ["-c", f"http.curloptResolve={checked.host}:{port}:{pinned}"]
    timeout = float(_setting("CATALOG_LOCATION_CLONE_TIMEOUT_SECONDS", 60))
    result = _git([*options, "clone", *CLONE_FLAGS, "--", checked.url, str(dest)], env=env, timeout=timeout)
    if result.returncode != 0:
        raise LocationRefused(f"git clone failed: {_last_lines(result.stderr)}")
    head = _git(["-C", str(dest), "rev-parse", "--verify", "--quiet", "HEAD"], env=env, timeout=30)
    if head.returncode != 0:
        raise LocationRefused(
            "No commits found: the URL is not a git repository, or the repository is empty (git saw no branches)."
        )
    return head.stdout.decode().strip()


def _last_lines(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    text = " ".join(lines[-2:]) or "no message from git"
    return text[:400]


def read_descriptor_files(dest: Path, *, home: str) -> tuple[list[tuple[str, bytes]], list[dsc.DescriptorError]]:
    """(path, content) of every mlplatform.yaml / model.yaml at HEAD, read from git's objects (no checkout)."""
    env = _git_env(home)
    listing = _git(["-C", str(dest), "ls-tree", "-r", "-z", "-l", "--full-tree", "HEAD"], env=env, timeout=60)
    if listing.returncode != 0:
        raise LocationRefused(f"Could not list the repository's files: {_last_lines(listing.stderr)}")
    files: list[tuple[str, bytes]] = []
    errors: list[dsc.DescriptorError] = []
    limit, max_bytes = int(_setting("CATALOG_LOCATION_MAX_FILES", 200)), dsc.max_file_bytes()
    for entry in listing.stdout.split(b"\0"):
        if not entry:
            continue
        meta, _, raw_path = entry.partition(b"\t")
        path = raw_path.decode("utf-8", "replace")
        if posixpath.basename(path) not in dsc.DESCRIPTOR_FILENAMES:
            continue
        mode, kind, oid, size = meta.split()
        if mode == b"120000":
            errors.append(dsc.DescriptorError(path, None, "is a symbolic link; descriptors must be regular files"))
        elif kind != b"blob":
            errors.append(dsc.DescriptorError(path, None, "is not a regular file; skipped"))
        elif int(size) > max_bytes:
            errors.append(dsc.DescriptorError(path, None, f"file is larger than {max_bytes // 1024} KiB; skipped"))
        elif len(files) >= limit:
            errors.append(dsc.DescriptorError(path, None, f"more than {limit} descriptor files; skipped"))
        else:
            blob = _git(["-C", str(dest), "cat-file", "blob", oid.decode()], env=env, timeout=30)
            if blob.returncode != 0:
                errors.append(dsc.DescriptorError(path, None, f"could not be read: {_last_lines(blob.stderr)}"))
            else:
                files.append((path, blob.stdout))
    return sorted(files), errors


# --- Registration and jobs ---------------------------------------------------------------------
