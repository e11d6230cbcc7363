from django.contrib.auth.views import LoginView

from .login_limit import lockout


class RateLimitedLoginView(LoginView):
    """The login page, returning 429 while too many sign-ins failed for the name or client."""

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        limit = lockout(request, username)
        if limit is None:
            return super().post(request, *args, **kwargs)
        minutes = max(1, round(limit.retry_after / 60))
        reason = "this username" if limit.scope == "username" else "your network address"
        # An unbound form: validating the posted one would try the password again.
        form = self.form_class(request, initial={"username": username})
        context = self.get_context_data(
            form=form,
            lockout_message=(
                f"Too many failed sign-ins for {reason}. Try again in about {minutes} "
                "minute(s), or ask an administrator to reset the password."
            ),
        )
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(limit.retry_after)
        return response
