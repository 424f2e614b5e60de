"""allauth adapters: closed sign-up by default, and SSO group → team mapping."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings

from portal.services.sso import sso_sync_groups


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        return settings.PORTAL_ALLOW_SIGNUP


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request, sociallogin) -> bool:
        # Users who arrive through the company's identity provider get an account.
        return True

    def pre_social_login(self, request, sociallogin) -> None:
        if sociallogin.is_existing:
            sso_sync_groups(user=sociallogin.user, claims=sociallogin.account.extra_data)

    def save_user(self, request, sociallogin, form=None):
        user = super().save_user(request, sociallogin, form)
        sso_sync_groups(user=user, claims=sociallogin.account.extra_data)
        return user
