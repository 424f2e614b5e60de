"""The browser side of governance without a browser: forms, htmx partials, permissions, query counts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance.models import Promotion, Status
from governance.services import promotion_request
from portal.services.audit import audit_signing_key_generate
from tests.catalog.factories import complete_version, make_model

pytestmark = pytest.mark.django_db


def login(client, user):
    client.force_login(user)
    client.get("/")  # warm the health-banner cache so query counts compare like with like
    return client


def awaiting(demo_users, model, capture, version=1):
    with capture(execute=True):
        p, _ = promotion_request(
            actor=demo_users["dana"], model_version=model.versions.get(version=version), environment="production",
            justification="Better recall.",
        )  # fmt: skip
    p.refresh_from_db()
    assert p.status == Status.AWAITING_APPROVAL
    return p


def test_dana_requests_production_from_the_form_and_a_double_submit_makes_one_request(
    client, demo_users, scorer, django_capture_on_commit_callbacks
):
    login(client, demo_users["dana"])
    mv = scorer.versions.get(version=1)
    page = client.get(mv.get_absolute_url())
    assert b'data-testid="request-production"' in page.content
    form = client.get(f"/governance/promotions/new/?model_version={mv.pk}&environment=production")
    assert form.status_code == 200 and b"Request promotion" in form.content
    body = {"model_version": mv.pk, "environment": "production", "justification": "Better recall on October data."}
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/governance/promotions/new/", body)
        second = client.post("/governance/promotions/new/", body)
    p = Promotion.objects.get()
    assert first.url == second.url == p.get_absolute_url()
    detail = client.get(p.get_absolute_url())
    assert b"Lineage completeness" in detail.content and b"awaiting approval" in detail.content.lower().replace(
        b"_", b" "
    )


def test_outsiders_cannot_request_and_olga_sees_nothing(client, demo_users, scorer):
    mv = scorer.versions.get(version=1)
    login(client, demo_users["eli"])
    assert b'data-testid="request-production"' not in client.get(mv.get_absolute_url()).content
    assert client.post("/governance/promotions/new/", {"model_version": mv.pk, "environment": "production",
                                                      "justification": "x"}).status_code == 403  # fmt: skip
    login(client, demo_users["olga"])
    for url in ["/governance/inbox/", "/governance/promotions/", "/governance/audit/"]:
        assert client.get(url).status_code == 403, url


def test_rita_approves_from_the_inbox_with_htmx_and_without_js(
    client, demo_users, scorer, django_capture_on_commit_callbacks, settings
):
    settings.MLFLOW_TRACKING_URI = "http://127.0.0.1:9"  # apply fails fast and leaves the request approved
    settings.GOVERNANCE_APPLY_ATTEMPTS = 1
    other = make_model("other-scorer", team="fraud", task="classification")
    complete_version(other, 1, scorer.versions.get().feature_versions, metrics={"accuracy": 0.95, "auc": 0.9})
    first = awaiting(demo_users, scorer, django_capture_on_commit_callbacks)
    second = awaiting(demo_users, other, django_capture_on_commit_callbacks)
    login(client, demo_users["rita"])
    inbox = client.get("/governance/inbox/")
    assert inbox.content.count(b'data-testid="inbox-item"') == 2
    assert b"Metrics against production" in inbox.content and b"asked by dana" in inbox.content
    with django_capture_on_commit_callbacks(execute=True):
        partial = client.post(
            f"/governance/promotions/{first.pk}/approve/", {"from": "inbox", "comment": "ok"}, HTTP_HX_REQUEST="true"
        )
    assert (
        partial.status_code == 200 and b"<html" not in partial.content and b"Your vote is recorded" in partial.content
    )
    with django_capture_on_commit_callbacks(execute=True):
        plain = client.post(
            f"/governance/promotions/{second.pk}/reject/", {"from": "inbox", "comment": "no drift plan"}
        )
    assert plain.status_code == 302 and plain.url == "/governance/inbox/"
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == Status.APPROVED and "MLflow" in first.apply_error
    assert second.status == Status.REJECTED
    empty = client.get("/governance/inbox/")
    assert b'data-testid="inbox-empty"' in empty.content


def test_a_repeat_decision_from_the_page_says_it_was_already_decided(
    client, demo_users, scorer, django_capture_on_commit_callbacks
):
    p = awaiting(demo_users, scorer, django_capture_on_commit_callbacks)
    login(client, demo_users["raj"])
    client.post(f"/governance/promotions/{p.pk}/reject/", {"comment": "no"})
    answer = client.post(f"/governance/promotions/{p.pk}/approve/", {"comment": "yes"}, follow=True)
    assert b"already rejected" in answer.content


def test_the_inbox_runs_the_same_queries_for_two_requests_or_eight(
    client, demo_users, scorer, django_capture_on_commit_callbacks
):
    feature_versions = scorer.versions.get().feature_versions
    login(client, demo_users["rita"])

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/governance/inbox/").status_code == 200
        return len(ctx.captured_queries)

    for i in range(2):
        model = make_model(f"m-{i}", team="fraud", task="classification")
        complete_version(model, 1, feature_versions, metrics={"accuracy": 0.95, "auc": 0.9})
        awaiting(demo_users, model, django_capture_on_commit_callbacks)
    few = queries()
    for i in range(2, 8):
        model = make_model(f"m-{i}", team="fraud", task="classification")
        complete_version(model, 1, feature_versions, metrics={"accuracy": 0.95, "auc": 0.9})
        awaiting(demo_users, model, django_capture_on_commit_callbacks)
    assert queries() == few


def test_the_live_panel_is_an_htmx_partial(client, demo_users, scorer, django_capture_on_commit_callbacks):
    p = awaiting(demo_users, scorer, django_capture_on_commit_callbacks)
    login(client, demo_users["dana"])
    partial = client.get(f"/governance/promotions/{p.pk}/?live=1", HTTP_HX_REQUEST="true")
    assert partial.content.lstrip().startswith(b'<section id="promotion-live"') and b"<html" not in partial.content


def test_the_audit_page_shows_a_promotions_whole_history_and_verifies_the_chain(
    client, demo_users, scorer, django_capture_on_commit_callbacks
):
    audit_signing_key_generate()
    p = awaiting(demo_users, scorer, django_capture_on_commit_callbacks)
    login(client, demo_users["rita"])
    page = client.get(f"/governance/audit/?promotion={p.pk}&verify=1")
    text = page.content.decode()
    assert "promotion.request" in text and "promotion.gates" in text and "job.enqueue" in text
    assert "Chain intact" in text
    assert client.get("/governance/audit/?action=promotion.request&from=2000-01-01").status_code == 200
    login(client, demo_users["dana"])
    assert client.get("/governance/audit/").status_code == 403


def test_rita_sees_her_inbox_on_the_home_page(client, demo_users, scorer, django_capture_on_commit_callbacks):
    awaiting(demo_users, scorer, django_capture_on_commit_callbacks)
    login(client, demo_users["rita"])
    home = client.get("/")
    assert b'data-testid="home-inbox"' in home.content and b"card-scorer v1" in home.content


def test_the_policy_page_shows_the_gates_the_approval_matrix_and_thresholds(client, demo_users):
    login(client, demo_users["dana"])
    page = client.get("/governance/policy/").content.decode()
    assert "Feature-version parity" in page and "accuracy" in page and 'data-testid="approval-matrix"' in page
