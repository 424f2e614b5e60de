"""Exports an auditor verifies offline: digest, signature, chain, CSV formula escaping."""

import json
import shutil
import subprocess

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.models import AuditEvent
from portal.services.audit import audit_record, audit_signing_key_generate

pytestmark = pytest.mark.django_db


@pytest.fixture
def auditor(api_client, make_token, demo_users):
    audit_signing_key_generate()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(demo_users['rita'], 'read')}")
    return api_client


def export(client, tmp_path, fmt="jsonl", **params):
    response = client.get("/api/v1/governance/audit/export/", {"format": fmt, **params})
    assert response.status_code == 200, getattr(response, "data", response)
    path = tmp_path / f"audit.{fmt}"
    path.write_bytes(b"".join(response.streaming_content))
    digest = client.get(response["X-Audit-Digest-Url"]).json()
    (tmp_path / "digest.json").write_text(json.dumps(digest))
    return path, digest, response


def test_an_export_and_its_signed_digest_verify_offline_with_openssl_and_the_command(auditor, tmp_path, settings):
    audit_record(action="demo.thing", object_type="demo", object_id="1", after={"a": 1})
    path, digest, response = export(auditor, tmp_path)
    signed = json.loads(digest["payload"])
    # The export itself is audited, right after the events it contains.
    assert signed["events"] == signed["last_seq"] == AuditEvent.objects.count() - 1
    assert AuditEvent.objects.order_by("-seq").first().action == "audit.export"
    assert response["X-Export-SHA256"] == signed["export_sha256"]
    (tmp_path / "payload.txt").write_text(digest["payload"])
    import base64

    (tmp_path / "payload.sig").write_bytes(base64.b64decode(digest["signature"]))
    (tmp_path / "public.pem").write_text(digest["public_key_pem"])
    if shutil.which("openssl"):
        done = subprocess.run(
            ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "public.pem", "-rawin", "-in", "payload.txt",
             "-sigfile", "payload.sig"], cwd=tmp_path, capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0 and "Success" in done.stdout, done.stderr
    call_command("audit_verify", "--export", str(path), "--digest", str(tmp_path / "digest.json"))


def test_the_command_names_an_edited_line_and_a_truncated_file(auditor, tmp_path):
    for i in range(3):
        audit_record(action="demo.thing", object_type="demo", object_id=str(i), after={"i": i})
    path, digest, _ = export(auditor, tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    edited = tmp_path / "edited.jsonl"
    edited.write_text("".join(line.replace('"i":1', '"i":7') for line in lines))
    assert edited.read_text() != path.read_text()
    with pytest.raises(CommandError, match=r"does not match its hash: it was edited"):
        call_command("audit_verify", "--export", str(edited))
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text("".join(lines[:-1]))
    with pytest.raises(CommandError, match="SHA-256 is not the one in its digest"):
        call_command("audit_verify", "--export", str(truncated), "--digest", str(tmp_path / "digest.json"))
    dropped = tmp_path / "dropped.jsonl"
    dropped.write_text("".join([*lines[:2], *lines[3:]]))
    with pytest.raises(CommandError, match="does not follow"):
        call_command("audit_verify", "--export", str(dropped))


def test_a_forged_digest_fails_its_signature(auditor, tmp_path):
    path, digest, _ = export(auditor, tmp_path)
    forged = dict(digest, payload=digest["payload"].replace('"format":"jsonl"', '"format":"jsonl" '))
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    with pytest.raises(CommandError, match="signature does not verify"):
        call_command("audit_verify", "--export", str(path), "--digest", str(tmp_path / "forged.json"))


def test_csv_cells_that_would_run_as_formulas_are_escaped(auditor, tmp_path):
    audit_record(action="demo.thing", object_type="demo", object_id='=HYPERLINK("http://x")', after={"v": "@SUM(1)"})
    path, _, response = export(auditor, tmp_path, fmt="csv")
    assert response["Content-Type"] == "text/csv"
    text = path.read_text()
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text
    assert text.splitlines()[0].startswith("seq,timestamp,actor_id,actor,action")


def test_the_digests_form_a_chain_and_ranges_filter_by_date(auditor, tmp_path):
    _, first, _ = export(auditor, tmp_path)
    _, second, _ = export(auditor, tmp_path, **{"from": "2000-01-01", "to": "2000-01-02"})
    assert json.loads(second["payload"])["previous_digest_sha256"] == first["payload_sha256"]
    assert json.loads(second["payload"])["events"] == 0
    bad = auditor.get("/api/v1/governance/audit/export/", {"from": "yesterday"})
    assert bad.status_code == 400 and "ISO 8601" in str(bad.json())


def test_only_auditors_export(api_client, make_token, demo_users):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(demo_users['dana'], 'read')}")
    assert api_client.get("/api/v1/governance/audit/export/").status_code == 403


def test_the_audit_page_offers_signed_exports_only_once_a_signing_key_exists(client, demo_users):
    client.force_login(demo_users["rita"])
    page = client.get("/governance/audit/").content.decode()
    assert 'data-testid="export-unsigned"' in page and "manage.py audit_keygen" in page
    assert 'data-testid="export-jsonl"' not in page
    audit_signing_key_generate()
    page = client.get("/governance/audit/").content.decode()
    assert 'data-testid="export-jsonl"' in page and 'data-testid="export-unsigned"' not in page
