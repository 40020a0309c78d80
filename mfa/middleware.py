"""django-otp's middleware for the admin, stepped around for `/api/` like the admin's other middleware."""

from __future__ import annotations

from django_otp.middleware import OTPMiddleware

from wallet_project.middleware import _SiteOnly


class SiteOTPMiddleware(_SiteOnly, OTPMiddleware):
    """Gives the admin's `request.user` the device that verified its session (`otp_device`, `is_verified()`):
    read from the session once per request, and lost when the device is deleted (a reset)."""
