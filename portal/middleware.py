from __future__ import annotations

from portal.context import audit_context, new_request_id


def client_address(request) -> str:
    # Behind a proxy, configure it to set REMOTE_ADDR (e.g. gunicorn --forwarded-allow-ips).
    return request.META.get("REMOTE_ADDR", "")


class RequestContextMiddleware:
    """Give each request an id and make actor/request id available to services."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request.headers.get("X-Request-ID", "")[:64] or new_request_id()
        user = request.user if getattr(request, "user", None) and request.user.is_authenticated else None
        with audit_context(user=user, request_id=request_id, client_ip=client_address(request)):
            request.request_id = request_id
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
