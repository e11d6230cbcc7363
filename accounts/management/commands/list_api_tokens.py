from django.core.management.base import BaseCommand

from accounts.models import ApiToken


class Command(BaseCommand):
    help = "List API tokens with their prefix, owner, scope and state; never their keys."

    def add_arguments(self, parser):
        parser.add_argument("username", nargs="?", help="Only this user's tokens.")

    def handle(self, *args, username, **options):
        tokens = ApiToken.objects.select_related("user")
        if username:
            tokens = tokens.filter(user__username=username)
        self.stdout.write(
            f"{'id':>5}  {'prefix':<8}  {'user':<20}  {'name':<20}  {'scope':<10}  "
            f"{'state':<8}  {'expires':<25}  last used"
        )
        for token in tokens:
            expires = (
                token.expires_at.isoformat(timespec="seconds") if token.expires_at else "never"
            )
            last_used = (
                token.last_used_at.isoformat(timespec="seconds") if token.last_used_at else "never"
            )
            scope = "read-only" if token.read_only else "read-write"
            self.stdout.write(
                f"{token.pk:>5}  {token.prefix:<8}  {token.user.get_username():<20}  "
                f"{token.name:<20}  {scope:<10}  {token.state:<8}  {expires:<25}  {last_used}"
            )
