"""API tokens for tools: a named secret per user, stored only as its SHA-256 hash."""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

# Characters of the key shown in listings to tell tokens apart. The rest of the key
# is never stored; 8 URL-safe characters carry 48 bits, far from the key's 256.
PREFIX_LENGTH = 8
# Bytes of randomness in a key: secrets.token_urlsafe(32) is 43 characters.
KEY_BYTES = 32


def key_hash(key: str) -> str:
    """Return the hex SHA-256 of a token key, the only form in which it is stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """A key a tool sends as `Authorization: Token <key>` to act as `user`."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. the tool.")
    prefix = models.CharField(max_length=PREFIX_LENGTH, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    read_only = models.BooleanField(
        default=False, help_text="Only GET, HEAD and OPTIONS requests are allowed."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["user__username", "-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… {self.name} ({self.user})"

    @classmethod
    def issue(
        cls, user, *, name: str, read_only: bool = False, expires_in: timedelta | None = None
    ) -> tuple["ApiToken", str]:
        """Create a token for `user` and return it with its key, which is not stored."""
        key = secrets.token_urlsafe(KEY_BYTES)
        # A prefix starting with "-" would read as an option to revoke_api_token.
        while key.startswith("-"):
            key = secrets.token_urlsafe(KEY_BYTES)
        token = cls.objects.create(
            user=user,
            name=name,
            prefix=key[:PREFIX_LENGTH],
            key_hash=key_hash(key),
            read_only=read_only,
            expires_at=timezone.now() + expires_in if expires_in else None,
        )
        return token, key

    def matches(self, key: str) -> bool:
        """Return whether `key` is this token's key, comparing in constant time."""
        return hmac.compare_digest(self.key_hash, key_hash(key))

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def state(self) -> str:
        if self.is_revoked:
            return "revoked"
        if self.is_expired:
            return "expired"
        return "active"

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])
