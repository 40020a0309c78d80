"""The admin's login form, under the same failed-login throttle as the API's token endpoint."""

from __future__ import annotations

import math
from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from wallet_project.throttling import FailedLoginThrottle


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    """Django's admin login, refusing an attempt of a throttled (client IP, account) pair before its password
    is checked, and counting each refused login against that pair (`FailedLoginThrottle`)."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "throttled": "Too many failed logins for this account from your address. Try again in %(seconds)s seconds.",
    }

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        if username is None or not self.cleaned_data.get("password"):
            return super().clean()  # a missing field is the form's own error, not a login attempt
        failed_logins = FailedLoginThrottle(self.request, username)
        if not failed_logins.allow_request():
            raise ValidationError(
                self.error_messages["throttled"],
                code="throttled",
                params={"seconds": math.ceil(failed_logins.wait() or 1)},
            )
        try:
            return super().clean()
        except ValidationError:
            failed_logins.record_failure()
            raise
