from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.passwords import PASSWORD_VARIABLE, new_password

ROLES = ("viewer", "author", "reviewer")


class Command(BaseCommand):
    help = (
        "Create a user with a role (viewer, author or reviewer), or change an existing "
        f"user's role. The password of a new user comes from {PASSWORD_VARIABLE} or a prompt."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", choices=ROLES, required=True)
        parser.add_argument("--email", default="")

    def handle(self, *args, username, role, email, **options):
        User = get_user_model()
        group = Group.objects.filter(name=role).first()
        if group is None:
            raise CommandError(f"group {role!r} not found; run `manage.py migrate` first.")
        with transaction.atomic():
            user = User.objects.filter(username=username).first()
            created = user is None
            if created:
                user = User(username=username, email=email)
                user.set_password(new_password(user))
                user.save()
            elif email:
                user.email = email
                user.save(update_fields=["email"])
            user.groups.remove(*Group.objects.filter(name__in=ROLES))
            user.groups.add(group)
        action = "created" if created else "updated"
        self.stdout.write(f"{action} user {username} with role {role}")
