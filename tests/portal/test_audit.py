import hashlib

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from portal.context import audit_context
from portal.models import AuditEvent, AuditHead, Team
from portal.services import teams as team_service
from portal.services.audit import (
    GENESIS_HASH,
    audit_checkpoint_create,
    audit_record,
    audit_signing_key_generate,
    audit_verify,
    canonical_text,
    event_hash,
)

pytestmark = pytest.mark.django_db


def make_chain(n=10):
    with audit_context(request_id="req-1", client_ip="10.0.0.1"):
        for i in range(n):
            audit_record(
                action="thing.update",
                object_type="test.thing",
                object_id=i,
                before={"v": i},
                after={"v": i + 1, "ü": "ß"},
            )


def raw(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_events_are_chained_with_gap_free_sequence_numbers():
    make_chain(5)
    events = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS_HASH
    for prev, event in zip(events, events[1:], strict=False):
        assert event.prev_hash == prev.hash
    assert AuditHead.objects.get().seq == 5 and AuditHead.objects.get().hash == events[-1].hash


def test_hash_is_sha256_of_canonical_text_with_microsecond_utc_timestamp():
    make_chain(1)
    event = AuditEvent.objects.get()
    row = {
        f: getattr(event, f)
        for f in (
            "seq",
            "timestamp",
            "actor_id",
            "actor",
            "action",
            "object_type",
            "object_id",
            "before",
            "after",
            "request_id",
            "client_ip",
            "prev_hash",
        )
    }
    text = canonical_text(row)
    assert '"after":{"v":1,"ü":"ß"}' in text  # ensure_ascii=False, compact separators, sorted keys
    assert event.timestamp.endswith("+00:00") and len(event.timestamp.split(".")[1]) == 12  # 6 digits + offset
    assert event.hash == event_hash(row)
    assert event.request_id == "req-1" and event.client_ip == "10.0.0.1"


def test_intact_chain_verifies():
    make_chain(20)
    result = audit_verify()
    assert result.ok and result.checked == 20


def test_edited_event_is_named():
    make_chain(10)
    raw("UPDATE portal_auditevent SET actor = 'mallory' WHERE seq = 4")
    result = audit_verify()
    assert not result.ok and result.first_bad_seq == 4 and "edited" in result.reason


def test_deleted_event_is_named():
    make_chain(10)
    raw("DELETE FROM portal_auditevent WHERE seq = 6")
    result = audit_verify()
    assert not result.ok and result.first_bad_seq == 6 and "missing" in result.reason


def test_two_consecutive_deletions_are_caught():
    make_chain(10)
    raw("DELETE FROM portal_auditevent WHERE seq IN (3, 4)")
    result = audit_verify()
    assert not result.ok and result.first_bad_seq == 3


def test_reordered_events_are_caught():
    make_chain(10)
    raw("UPDATE portal_auditevent SET seq = -1 WHERE seq = 5")
    raw("UPDATE portal_auditevent SET seq = 5 WHERE seq = 6")
    raw("UPDATE portal_auditevent SET seq = 6 WHERE seq = -1")
    result = audit_verify()
    assert not result.ok and result.first_bad_seq == 5


def test_inserted_event_is_caught_even_with_a_valid_own_hash():
    make_chain(10)
    # A forger renumbers the tail and inserts a well-formed event at 5 linking to #4.
    raw("UPDATE portal_auditevent SET seq = seq + 1000 WHERE seq >= 5")
    raw("UPDATE portal_auditevent SET seq = seq - 999 WHERE seq >= 1005")
    four = AuditEvent.objects.get(seq=4)
    row = {
        "seq": 5,
        "timestamp": four.timestamp,
        "actor_id": None,
        "actor": "mallory",
        "action": "x",
        "object_type": "t",
        "object_id": "1",
        "before": "null",
        "after": "null",
        "request_id": "",
        "client_ip": "",
        "prev_hash": four.hash,
    }
    AuditEvent.objects.create(**row, hash=event_hash(row))
    result = audit_verify()
    assert not result.ok and result.first_bad_seq == 6  # #6 (old #5) no longer links


def test_truncated_tail_is_caught_by_signed_checkpoint_even_if_head_is_rewritten():
    audit_signing_key_generate()
    make_chain(10)
    assert audit_checkpoint_create().seq == 10
    raw("DELETE FROM portal_auditevent WHERE seq >= 9")
    nine = AuditEvent.objects.get(seq=8)
    raw("UPDATE portal_audithead SET seq = 8, hash = %s", [nine.hash])
    result = audit_verify()
    assert not result.ok and result.first_bad_seq == 9 and "checkpoint" in result.reason


def test_truncated_tail_after_last_checkpoint_is_caught_by_head():
    make_chain(10)
    raw("DELETE FROM portal_auditevent WHERE seq = 10")
    result = audit_verify()
    assert not result.ok and result.first_bad_seq == 10


def test_forged_checkpoint_signature_is_caught():
    audit_signing_key_generate()
    make_chain(3)
    audit_checkpoint_create()
    raw("UPDATE portal_auditcheckpoint SET signature = %s", ["00" * 64])
    assert not audit_verify().ok


def test_audit_verify_command_names_first_bad_event(capsys):
    make_chain(5)
    call_command("audit_verify")
    assert "OK: 5 events" in capsys.readouterr().out
    raw("UPDATE portal_auditevent SET after = '{\"v\":99}' WHERE seq = 2")
    with pytest.raises(CommandError, match="event #2"):
        call_command("audit_verify")


def test_service_write_and_its_audit_event_commit_or_roll_back_together(demo_users):
    before = AuditEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        team_service.team_create(actor=demo_users["admin"], slug="ghost", name="Ghost")
        raise RuntimeError("boom")
    assert not Team.objects.filter(slug="ghost").exists()
    assert AuditEvent.objects.count() == before
    with audit_context(user=demo_users["admin"], request_id="r-42"):
        team_service.team_create(actor=demo_users["admin"], slug="vision", name="Vision")
    event = AuditEvent.objects.latest("seq")
    assert (event.action, event.actor, event.request_id, event.object_type) == (
        "team.create",
        "admin",
        "r-42",
        "portal.team",
    )
    assert event.before_json is None and event.after_json["slug"] == "vision"


def test_audit_events_cannot_be_changed_in_admin(client, demo_users):
    make_chain(1)
    client.force_login(demo_users["admin"])
    event = AuditEvent.objects.latest("seq")
    assert client.get(f"/admin/portal/auditevent/{event.pk}/delete/").status_code == 403
    assert client.post(f"/admin/portal/auditevent/{event.pk}/change/", {"actor": "x"}).status_code == 403


def test_fast_canonical_text_equals_the_specified_json_dumps():
    import json

    with audit_context(request_id='r"1\\', client_ip="::1"):
        audit_record(
            action="x.y",
            object_type="t",
            object_id='id "quoted" ☃',
            before={"b": [1, 2.5, None], "a": {"z": "é", "k": True}},
            after="tab\there",
        )
    event = AuditEvent.objects.latest("seq")
    fields = (
        "seq",
        "timestamp",
        "actor_id",
        "actor",
        "action",
        "object_type",
        "object_id",
        "before",
        "after",
        "request_id",
        "client_ip",
        "prev_hash",
    )
    row = {f: getattr(event, f) for f in fields}
    reference = json.dumps(
        row | {"before": json.loads(row["before"]), "after": json.loads(row["after"])},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert canonical_text(row) == reference
    assert event.hash == hashlib.sha256(reference.encode("utf-8")).hexdigest()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("sql", "bad"),
    [
        (None, None),
        ("UPDATE portal_auditevent SET actor = 'm' WHERE seq = 17", 17),
        ("DELETE FROM portal_auditevent WHERE seq = 15", 15),  # the last event of the first range
        ("DELETE FROM portal_auditevent WHERE seq = 16", 16),  # the first event of the second range
        ("UPDATE portal_auditevent SET prev_hash = hash WHERE seq = 16", 16),
        ("DELETE FROM portal_auditevent WHERE seq IN (8, 9)", 8),
    ],
)
def test_parallel_verification_finds_the_same_first_bad_event(sql, bad):
    make_chain(30)
    if sql:
        raw(sql)
    result = audit_verify(workers=2, min_parallel=0)
    assert result.first_bad_seq == bad and result.ok == (bad is None)
    if bad is None:
        assert result.checked == 30 and result.last_seq == 30


def test_export_lines_are_the_hashed_text_plus_the_hash():
    import json

    from portal.services.audit import audit_export_lines

    make_chain(3)
    lines = list(audit_export_lines())
    assert len(lines) == 3 and all(line.endswith("\n") for line in lines)
    for line, event in zip(lines, AuditEvent.objects.order_by("seq"), strict=True):
        data = json.loads(line)
        assert data["hash"] == event.hash and data["after"] == event.after_json and data["seq"] == event.seq
        assert list(data) == sorted(data)
        without = {k: v for k, v in data.items() if k != "hash"}
        text = json.dumps(without, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(text.encode()).hexdigest() == event.hash
