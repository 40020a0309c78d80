"""The admin's second step: the code page, the enrolment page (QR code, then the recovery codes), and a way out.

These pages are for a staff member whose password was right and whose
session is not verified yet (`admin_site.second_step_pending`); anyone else
is sent to the login page (or, once verified, on to where they were going).
"""

from __future__ import annotations

import math
from typing import Any

import django_otp
from django import forms
from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from mfa import services
from mfa.admin_site import second_step_pending
from mfa.models import TOTPDevice
from mfa.selectors import mfa_enrolled
from wallet_project.errors import DomainError
from wallet_project.throttling import FailedLoginThrottle


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True, "inputmode": "text"}),
        help_text="The 6-digit code your authenticator app shows now, or one of your recovery codes.",
    )


class EnrolmentCodeForm(CodeForm):
    code = forms.CharField(
        label="Code",
        max_length=32,
        strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True, "inputmode": "numeric"}),
        help_text="The 6-digit code the app shows for this account once it is added.",
    )


def _next_url(request: HttpRequest) -> str:
    """Where to go after the second step: the `next` asked for, if it is a page of this site, else the index."""
    wanted = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME) or ""
    if wanted and url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return reverse("admin:index")


def _away(request: HttpRequest, *, pending_only: bool = True) -> HttpResponse | None:
    """Where a request that is not a pending second step goes instead (None: it is one). Not `pending_only`:
    a logged-in staff member may come too (to add an app of their own accord)."""
    user = request.user
    if not user.is_authenticated or not (user.is_active and user.is_staff):
        return HttpResponseRedirect(reverse("admin:login"))
    if pending_only and not second_step_pending(request):
        return HttpResponseRedirect(_next_url(request))
    return None


def _page(request: HttpRequest, template: str, **context: Any) -> HttpResponse:
    site = admin.site
    return render(
        request,
        template,
        {
            "site_title": site.site_title,
            "site_header": site.site_header,
            "site_url": site.site_url,
            "has_permission": False,  # no header links, no menu: nothing but this step
            "is_popup": False,
            "is_nav_sidebar_enabled": False,
            "next": _next_url(request),
            **context,
        },
    )


def _verified(request: HttpRequest, device: TOTPDevice) -> None:
    """Mark the session as verified by `device`, under a new session key (the session just gained rights)."""
    django_otp.login(request, device)
    request.session.cycle_key()


@never_cache
def verify(request: HttpRequest) -> HttpResponse:
    """The code page: a TOTP code or a recovery code verifies the session; wrong ones count as failed logins."""
    away = _away(request)
    if away is not None:
        return away
    user = request.user
    if not mfa_enrolled(user_id=user.pk):
        return admin.site.second_step_redirect(request, _next_url(request))  # type: ignore[attr-defined]
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        failed_logins = FailedLoginThrottle(request, user.email)
        if not failed_logins.allow_request():
            seconds = math.ceil(failed_logins.wait() or 1)
            form.add_error("code", f"Too many failed attempts from your address. Try again in {seconds} seconds.")
        else:
            device = services.second_factor_check(user=user, code=form.cleaned_data["code"])
            if device is not None:
                _verified(request, device)
                return HttpResponseRedirect(_next_url(request))
            failed_logins.record_failure()
            form.add_error("code", services.WRONG_CODE)
    return _page(request, "admin/mfa/verify.html", title="Two-factor authentication", form=form)


@never_cache
def enrol(request: HttpRequest) -> HttpResponse:
    """The enrolment page: the app's QR code (and its secret, to type in), then a first code turns MFA on and
    shows the recovery codes, once. Also open to a logged-in staff member who adds an app of their own accord
    when the admin does not require one."""
    away = _away(request, pending_only=False)
    if away is not None:
        return away
    user = request.user
    if getattr(user, "is_verified", lambda: False)():
        return HttpResponseRedirect(_next_url(request))
    pending = services.totp_enrolment_pending(user=user)
    if pending is None:  # an app is on already: its code, if the session still owes one
        if second_step_pending(request):
            return admin.site.second_step_redirect(request, _next_url(request))  # type: ignore[attr-defined]
        return HttpResponseRedirect(_next_url(request))
    device, enrolment = pending
    form = EnrolmentCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            recovery_codes = services.totp_enrolment_confirm(user=user, code=form.cleaned_data["code"])
        except DomainError as exc:
            form.add_error("code", exc.message)
        else:
            device.refresh_from_db()
            _verified(request, device)
            return _page(
                request, "admin/mfa/recovery_codes.html", title="Your recovery codes", recovery_codes=recovery_codes
            )
    return _page(
        request,
        "admin/mfa/enrol.html",
        title="Add an authenticator app",
        form=form,
        secret=enrolment.secret,
        # The QR code's SVG is made here from our own URI (qrcode's image): no input of anyone else's reaches it.
        qr_svg=mark_safe(enrolment.qr_svg),  # noqa: S308
    )


@never_cache
@require_POST
def log_out(request: HttpRequest) -> HttpResponse:
    """Leave the second step: the session ends, and the login page is next."""
    logout(request)
    return HttpResponseRedirect(reverse("admin:login"))
