from portal.models.audit import AuditCheckpoint, AuditEvent, AuditExportDigest, AuditHead
from portal.models.identity import Membership, PlatformRole, RiskTier, RoleGrant, Team, TeamRole
from portal.models.jobs import Job, JobLogLine, JobStatus
from portal.models.tokens import ApiToken, Scope

__all__ = [
    "ApiToken",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditExportDigest",
    "AuditHead",
    "Job",
    "JobLogLine",
    "JobStatus",
    "Membership",
    "PlatformRole",
    "RiskTier",
    "RoleGrant",
    "Scope",
    "Team",
    "TeamRole",
]
