"""The embedded git server: smart HTTP through git http-backend, token auth, catalog visibility for reads."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from portal.models import AuditEvent
from scaffolder.services.git_provider import EmbeddedGitProvider
from tests.scaffolder.conftest import git

pytestmark = [pytest.mark.integration]


@pytest.fixture
def repo(git_server, demo_users, tmp_path):
    """fraud/models.git with one commit, made through the provider like a run does."""
    provider = EmbeddedGitProvider()
    provider.create_repo(team="fraud", name="models", run_id=0)
    work = tmp_path / "seed"
    work.mkdir()
    (work / "README.md").write_text("models\n")
    git("init", "--quiet", "--initial-branch=main", str(work))
    git("-C", str(work), "add", "-A")
    git("-C", str(work), "commit", "-qm", "first")
    provider.push(local=work, team="fraud", name="models", branch="main", run_id=0)
    return provider.clone_url(team="fraud", name="models")


def with_token(url: str, token: str, user: str = "someone") -> str:
    return url.replace("http://", f"http://{user}:{token}@")


def test_clone_needs_a_token(repo, tmp_path):
    done = git("clone", "--quiet", repo, str(tmp_path / "c"), check=False)
    assert done.returncode != 0 and "could not read Username" in done.stderr  # the server asked for credentials


def test_a_member_clones_and_pushes_with_a_write_token(repo, demo_users, make_token, tmp_path):
    token = make_token(demo_users["dana"], "write")
    clone = tmp_path / "c"
    git("clone", "--quiet", with_token(repo, token), str(clone))
    (clone / "train.py").write_text("print('hi')\n")
    git("-C", str(clone), "add", "train.py")
    git("-C", str(clone), "commit", "-qm", "train")
    git("-C", str(clone), "push", "--quiet", "origin", "main")
    head = EmbeddedGitProvider().head(team="fraud", name="models", branch="main")
    assert head == git("-C", str(clone), "rev-parse", "HEAD").stdout.strip()
    event = AuditEvent.objects.filter(action="git.push").last()
    assert event.actor == "dana" and event.object_id == "fraud/models"


def test_a_large_push_arrives_in_chunks(repo, demo_users, make_token, tmp_path):
    token = make_token(demo_users["dana"], "write")
    clone = tmp_path / "c"
    git("clone", "--quiet", with_token(repo, token), str(clone))
    (clone / "blob.bin").write_bytes(__import__("os").urandom(300_000))
    git("-C", str(clone), "add", "blob.bin")
    git("-C", str(clone), "commit", "-qm", "blob")
    pushed = git("-C", str(clone), "-c", "http.postBuffer=4096", "push", "origin", "main", check=False)
    assert pushed.returncode == 0, pushed.stderr
    assert (
        EmbeddedGitProvider().head(team="fraud", name="models", branch="main")
        == git("-C", str(clone), "rev-parse", "HEAD").stdout.strip()
    )


def test_reading_follows_catalog_visibility(repo, demo_users, make_token, tmp_path):
    # eli is in another team but reads the catalog: he may clone. olga has no team and no role: she may not.
    git("clone", "--quiet", with_token(repo, make_token(demo_users["eli"], "read")), str(tmp_path / "eli"))
    done = git(
        "clone", "--quiet", with_token(repo, make_token(demo_users["olga"], "read")), str(tmp_path / "o"), check=False
    )
    assert done.returncode != 0 and "403" in done.stderr


def test_pushing_needs_the_write_scope_and_membership(repo, demo_users, make_token, tmp_path):
    clone = tmp_path / "c"
    git("clone", "--quiet", with_token(repo, make_token(demo_users["dana"], "read")), str(clone))
    (clone / "x").write_text("x")
    git("-C", str(clone), "add", "x")
    git("-C", str(clone), "commit", "-qm", "x")
    read_only = git("-C", str(clone), "push", "origin", "main", check=False)
    assert read_only.returncode != 0 and "403" in read_only.stderr
    outsider = with_token(repo, make_token(demo_users["eli"], "write"))
    done = git("-C", str(clone), "push", outsider, "main", check=False)
    assert done.returncode != 0 and "403" in done.stderr
    assert not AuditEvent.objects.filter(action="git.push", actor__in=["dana", "eli"]).exists()


def test_a_revoked_token_is_refused(repo, demo_users, tmp_path):
    from portal.services.tokens import token_create, token_revoke

    created = token_create(actor=demo_users["dana"], name="t", scopes=["read"])
    token_revoke(actor=demo_users["dana"], token=created.token)
    done = git("clone", "--quiet", with_token(repo, created.secret), str(tmp_path / "c"), check=False)
    assert done.returncode != 0 and "Authentication failed" in done.stderr


def test_only_the_smart_protocol_is_served(repo, demo_users, make_token):
    import base64

    client = Client()
    auth = "Basic " + base64.b64encode(f"x:{make_token(demo_users['dana'], 'read')}".encode()).decode()
    assert client.get("/git/fraud/models.git/HEAD", HTTP_AUTHORIZATION=auth).status_code == 404
    assert client.get("/git/fraud/models.git/info/refs", HTTP_AUTHORIZATION=auth).status_code == 403  # dumb protocol
    assert (
        client.get("/git/fraud/../etc.git/info/refs?service=git-upload-pack", HTTP_AUTHORIZATION=auth).status_code
        == 404
    )
    assert (
        client.get("/git/fraud/nope.git/info/refs?service=git-upload-pack", HTTP_AUTHORIZATION=auth).status_code == 404
    )
    answer = client.get("/git/fraud/models.git/info/refs?service=git-upload-pack", HTTP_AUTHORIZATION=auth)
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/x-git-upload-pack-advertisement"


def test_csrf_is_off_only_for_the_git_endpoints(repo, demo_users):
    client = Client(enforce_csrf_checks=True)
    client.force_login(demo_users["dana"])
    # The git endpoints take no cookies: a POST without a CSRF token reaches the token check.
    assert client.post("/git/fraud/models.git/git-upload-pack").status_code == 401
    # Every other form still needs its CSRF token.
    assert client.post("/create/").status_code == 403


def test_the_server_answers_its_health_check(git_server):
    import requests

    answer = requests.get(settings.GIT_SERVER_URL + "/", timeout=5)
    assert answer.status_code == 200 and "git clone" in answer.text
