from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from .login_limit import lockout


class RateLimitedModelBackend(ModelBackend):
    """ModelBackend that rejects every password once the login limit is reached.

    Raising PermissionDenied stops django.contrib.auth.authenticate from trying
    further backends, so the admin login is limited as well as the login page.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is not None and lockout(request, username) is not None:
            raise PermissionDenied("too many failed sign-ins; try again later")
        return super().authenticate(request, username=username, password=password, **kwargs)
