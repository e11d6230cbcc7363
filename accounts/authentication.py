"""DRF authentication by `Authorization: Token <key>`, for scripts and SOAR tools."""

import logging
from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS

from .models import PREFIX_LENGTH, ApiToken

logger = logging.getLogger(__name__)

KEYWORD = "Token"
# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ReadOnlyToken(exceptions.PermissionDenied):
    default_detail = _("This API token is read-only; use a token without --read-only to write.")
    default_code = "read_only_token"


class ApiTokenAuthentication(BaseAuthentication):
    """Authenticate a request by an ApiToken key.

    Expired and revoked tokens fail with 401 and a message naming the reason. A read-only token used for
    a method other than GET, HEAD or OPTIONS fails with 403, whatever the view's
    own permissions are.
    """

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid Authorization header; send `Authorization: Token <key>` with one key."
            )
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid token: it is not ASCII text.") from exc
        token = self._token_for(key)
        if token.is_revoked:
            raise exceptions.AuthenticationFailed(
                f"API token {token.prefix}… was revoked; ask for a new token."
            )
        if token.is_expired:
            raise exceptions.AuthenticationFailed(
                f"API token {token.prefix}… expired at {token.expires_at.isoformat()}; "
                "ask for a new token."
            )
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("The token's user account is disabled.")
        if token.read_only and request.method not in SAFE_METHODS:
            raise ReadOnlyToken()
        self._touch(token)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return KEYWORD

    def _token_for(self, key: str) -> ApiToken:
        candidates = ApiToken.objects.select_related("user").filter(prefix=key[:PREFIX_LENGTH])
        for token in candidates:
            if token.matches(key):
                return token
        logger.info("API request with an unknown token")
        raise exceptions.AuthenticationFailed("Invalid token.")

    def _touch(self, token: ApiToken) -> None:
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
