from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiToken


class Command(BaseCommand):
    help = (
        "Create an API token for a user and print its key once, alone on the last line. "
        "Only a hash of the key is stored, so a lost key cannot be shown again."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="What the token is for (default: cli).")
        parser.add_argument(
            "--read-only", action="store_true", help="Allow only GET, HEAD and OPTIONS requests."
        )
        parser.add_argument(
            "--expires-days",
            type=int,
            default=None,
            help="Days until the token expires (default: never).",
        )

    def handle(self, *args, username, name, read_only, expires_days, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"user {username!r} not found; create it first with create_user.")
        if expires_days is not None and expires_days < 1:
            raise CommandError(f"--expires-days {expires_days} is invalid; give 1 or more days.")
        expires_in = timedelta(days=expires_days) if expires_days else None
        token, key = ApiToken.issue(
            user, name=name or "cli", read_only=read_only, expires_in=expires_in
        )
        scope = "read-only" if read_only else "read-write"
        expiry = token.expires_at.isoformat() if token.expires_at else "never"
        self.stderr.write(
            f"Created {scope} token {token.prefix}… (id {token.pk}) for {user.get_username()}, "
            f"expires {expiry}. Store the key now; it is not shown again."
        )
        self.stdout.write(key)
