"""Who may read governance's compliance views."""

from portal.models import PlatformRole
from portal.permissions import has_role, is_platform_admin, require


def require_audit_reader(user) -> None:
    require(
        is_platform_admin(user) or has_role(user, PlatformRole.RISK_APPROVER),
        "Only platform admins and risk approvers read and export the audit trail.",
    )
