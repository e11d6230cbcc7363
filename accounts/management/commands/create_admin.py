from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.passwords import PASSWORD_VARIABLE, new_password


class Command(BaseCommand):
    help = (
        "Create the first administrator: a superuser, who has every permission. "
        f"The password comes from {PASSWORD_VARIABLE} or a prompt."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="")

    def handle(self, *args, username, email, **options):
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            raise CommandError(f"user {username!r} already exists; choose another name.")
        user = User(username=username, email=email, is_staff=True, is_superuser=True)
        user.set_password(new_password(user))
        user.save()
        self.stdout.write(f"created administrator {username}")
