"""Two approvers clicking at the same moment: one outcome, one apply job."""

import threading

import pytest
from django.db import connection

from governance.models import Promotion, Status, Vote
from governance.services import promotion_decide, promotion_request
from portal.models import Job
from portal.services.teams import Conflict

pytestmark = pytest.mark.django_db(transaction=True)


def test_simultaneous_approvals_give_one_decision_and_one_apply(demo_users, scorer):
    from portal.celery import app

    # The apply job is only queued (on an in-memory broker): counted, not run.
    previous = app.conf.task_always_eager, app.conf.broker_url
    app.conf.task_always_eager, app.conf.broker_url = False, "memory://"
    try:
        p, _ = promotion_request(
            actor=demo_users["dana"], model_version=scorer.versions.get(), environment="production", justification="go"
        )
        from portal.services.jobs import job_run

        job_run(job_id=p.gates_job_id)
        p.refresh_from_db()
        assert p.status == Status.AWAITING_APPROVAL and p.required_approvals == 1
        barrier, outcomes = threading.Barrier(2), {}

        def vote(name: str) -> None:
            barrier.wait()
            try:
                outcomes[name] = promotion_decide(actor=demo_users[name], promotion=p, decision="approve").status
            except Conflict as exc:
                outcomes[name] = str(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=vote, args=(n,)) for n in ("rita", "raj")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(o == Status.APPROVED for o in outcomes.values()) == [False, True], outcomes
        assert any("already approved" in o for o in outcomes.values())
        assert Vote.objects.filter(promotion=p).count() == 1
        assert Job.objects.filter(kind="governance.apply").count() == 1
        assert Promotion.objects.get(pk=p.pk).status == Status.APPROVED
    finally:
        app.conf.task_always_eager, app.conf.broker_url = previous
