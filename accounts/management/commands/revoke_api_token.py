from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiToken


class Command(BaseCommand):
    help = "Revoke an API token, given its id or the prefix that list_api_tokens shows."

    def add_arguments(self, parser):
        parser.add_argument("token", metavar="PREFIX_OR_ID")

    def handle(self, *args, token, **options):
        matches = list(ApiToken.objects.filter(prefix=token))
        if not matches and token.isdigit():
            matches = list(ApiToken.objects.filter(pk=int(token)))
        if not matches:
            raise CommandError(f"no API token has the prefix or id {token!r}; see list_api_tokens.")
        if len(matches) > 1:
            ids = ", ".join(str(item.pk) for item in matches)
            raise CommandError(
                f"several tokens have the prefix {token!r} (ids {ids}); give the id."
            )
        item = matches[0]
        if item.is_revoked:
            self.stdout.write(f"token {item.prefix}… (id {item.pk}) was already revoked")
            return
        item.revoke()
        self.stdout.write(f"revoked token {item.prefix}… (id {item.pk}) of {item.user}")
