from __future__ import annotations

from rest_framework import permissions

from portal.models import ApiToken, Scope


class TokenScopePermission(permissions.BasePermission):
    """Token requests need the view's scope; session requests are limited by roles only.

    A view names ``required_scopes = {"GET": "read", "POST": "promote"}`` or the
    default applies: safe methods need ``read``, the others ``write``.
    """

    message = "This token lacks the scope needed here."

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        required = required_scope(request, view)
        self.message = f"This token lacks the '{required}' scope needed here."
        return required in token.granted_scopes()


def required_scope(request, view) -> str:
    mapping = getattr(view, "required_scopes", None) or {}
    action_scopes = getattr(view, "action_scopes", None) or {}
    action = getattr(view, "action", None)
    if action and action in action_scopes:
        return action_scopes[action]
    if request.method in mapping:
        return mapping[request.method]
    return Scope.READ if request.method in permissions.SAFE_METHODS else Scope.WRITE
