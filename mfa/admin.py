"""Second factors in the back office: each user's state on their page and in the list, and support's reset.

The user pages are accounts' (`accounts.admin.UserAdmin`), extended here so
that the accounts app knows nothing of second factors. The devices, recovery
codes and logins waiting for a code are not shown: the secrets are encrypted
and the codes hashed, and staff have no use for either.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse

from accounts.admin import UserAdmin
from accounts.models import User
from mfa.models import TOTPDevice
from mfa.selectors import mfa_status
from mfa.services import mfa_reset
from wallet_project.admin_forms import ReasonField
from wallet_project.admin_helpers import ObjectPageAdminMixin, admin_change_url


class ResetForm(forms.Form):
    reason = ReasonField()


class SecondFactorUserAdmin(ObjectPageAdminMixin, UserAdmin):
    """The user admin, with each user's second factor and the page that resets it (`mfa.reset_mfa`)."""

    object_page = "reset_mfa"  # reset_mfa_view, has_reset_mfa_permission
    change_form_template = "admin/mfa/user_change_form.html"

    list_display = (*UserAdmin.list_display[:4], "two_factor", *UserAdmin.list_display[4:])
    readonly_fields = (*UserAdmin.readonly_fields, "second_factor")
    fieldsets = (
        *UserAdmin.fieldsets[:2],
        ("Two-factor authentication", {"fields": ("second_factor",)}),
        *UserAdmin.fieldsets[2:],
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        confirmed = TOTPDevice.objects.filter(user_id=OuterRef("pk"), confirmed=True)
        return super().get_queryset(request).annotate(mfa_enabled=Exists(confirmed))

    @admin.display(boolean=True, description="2FA", ordering="mfa_enabled")
    def two_factor(self, user: User) -> bool:
        return user.mfa_enabled  # type: ignore[attr-defined]

    @admin.display(description="second factor")
    def second_factor(self, user: User) -> str:
        status = mfa_status(user_id=user.pk)
        if not status.enabled:
            return "Off: the password alone logs in."
        return f"On: an authenticator app, and {status.recovery_codes_left} unused recovery code(s)."

    def has_reset_mfa_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("mfa.reset_mfa")

    def reset_mfa_view(self, request: HttpRequest, user: User) -> HttpResponse:
        """Turn a user's second factor off (their app and recovery codes are lost), with a reason."""
        status = mfa_status(user_id=user.pk)
        form = ResetForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            reason = form.cleaned_data["reason"]
            if mfa_reset(user=user, staff=request.user, reason=reason):  # type: ignore[arg-type]
                self.log_change(request, user, f"Reset two-factor authentication. Reason: {reason}")
                self.message_user(request, f"Two-factor authentication of {user.email} is reset.", messages.SUCCESS)
            else:
                self.message_user(request, f"Nothing done: {user.email} has no second factor.", messages.WARNING)
            return HttpResponseRedirect(admin_change_url(User, user.pk))
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": f"Reset two-factor authentication of {user.email}",
            "opts": self.opts,
            "original": user,
            "status": status,
            "form": form,
        }
        return TemplateResponse(request, "admin/mfa/reset.html", context)


admin.site.unregister(User)
admin.site.register(User, SecondFactorUserAdmin)
