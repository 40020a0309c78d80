"""The back office's admin site: after the password, a second factor.

Staff log in with their password as before (Django's login view, under the
failed-login throttle), and the session is logged in but not yet *verified*:
until a code from their authenticator app (or a recovery code) verifies it
(django-otp's `login`, which records the device in the session), every admin
page sends them to the second step, and `has_permission` is false. A staff
member without an app is sent to enrol one (a QR code page) before anything
else.

Who must pass it: every staff member when `ADMIN_REQUIRE_MFA` is on (the
default with DEBUG off); otherwise those who have an app (the session
remembers, at the password step, whether they had one). django-otp's
middleware (`mfa.middleware`) reads the device back from the session on each
request: a device deleted by a reset unverifies its sessions at once.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.http import urlencode

from mfa.selectors import mfa_enrolled

# Set at the password step: whether the staff member had an authenticator app then.
ENROLLED_AT_LOGIN = "mfa_enrolled_at_login"


def second_step_pending(request: HttpRequest) -> bool:
    """Whether this admin session's staff member has passed their password but still owes a second factor."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not (user.is_active and user.is_staff):
        return False
    if getattr(user, "is_verified", None) is not None and user.is_verified():
        return False
    return bool(settings.ADMIN_REQUIRE_MFA or request.session.get(ENROLLED_AT_LOGIN))


@receiver(user_logged_in)
def _remember_enrolment(sender: object, request: HttpRequest | None, user: Any, **kwargs: object) -> None:
    """At the password step, note in the session whether the staff member has an app (then it is asked for)."""
    if request is not None and hasattr(request, "session") and user.is_staff:
        request.session[ENROLLED_AT_LOGIN] = mfa_enrolled(user_id=user.pk)


class BackOfficeAdminSite(admin.AdminSite):
    """Django's admin site, whose pages ask for the second step first (see the module docstring).

    Its home page is the back office's dashboard (backoffice/dashboard.py), above the list of every section: the
    index is one of this site's views, so it is behind the same two steps as every other page.
    """

    index_template = "admin/backoffice/index.html"

    def has_permission(self, request: HttpRequest) -> bool:
        return super().has_permission(request) and not second_step_pending(request)

    def admin_view(self, view: Callable[..., HttpResponse], cacheable: bool = False) -> Callable[..., HttpResponse]:
        checked = super().admin_view(view, cacheable)

        def second_step_first(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if second_step_pending(request):
                return self.second_step_redirect(request, request.get_full_path())
            return checked(request, *args, **kwargs)

        return update_wrapper(second_step_first, checked)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.method == "GET" and second_step_pending(request):
            return self.second_step_redirect(request, request.GET.get(REDIRECT_FIELD_NAME, ""))
        return super().login(request, extra_context)

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        from backoffice.dashboard import dashboard_context

        return super().index(request, {**dashboard_context(request, self), **(extra_context or {})})

    def second_step_redirect(self, request: HttpRequest, next_url: str) -> HttpResponseRedirect:
        """To the code page, or to enrolment for a staff member without an app; back to `next_url` after it."""
        page = "admin:mfa_verify" if mfa_enrolled(user_id=request.user.pk) else "admin:mfa_enrol"
        url = reverse(page, current_app=self.name)
        if next_url:
            url += "?" + urlencode({REDIRECT_FIELD_NAME: next_url})
        return HttpResponseRedirect(url)

    def get_urls(self) -> list[URLResolver | URLPattern]:
        from mfa import admin_views

        second_step = [
            path("mfa/verify/", admin_views.verify, name="mfa_verify"),
            path("mfa/enrol/", admin_views.enrol, name="mfa_enrol"),
            path("mfa/logout/", admin_views.log_out, name="mfa_logout"),
        ]
        return [*second_step, *super().get_urls()]
