"""Reading a new account's password in management commands."""

import getpass
import os
import sys

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

PASSWORD_VARIABLE = "PORTAL_PASSWORD"


def new_password(user) -> str:
    """Return a password for `user` from PORTAL_PASSWORD or a prompt, checked by the validators.

    Raises CommandError when neither is available or AUTH_PASSWORD_VALIDATORS reject it.
    """
    password = os.environ.get(PASSWORD_VARIABLE)
    if password is None:
        if not sys.stdin.isatty():
            raise CommandError(
                f"no password: set {PASSWORD_VARIABLE} or run the command in a terminal."
            )
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password (again): ") != password:
            raise CommandError("the two passwords differ; nothing was created.")
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise CommandError("password rejected: " + " ".join(exc.messages)) from exc
    return password
