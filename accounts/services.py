"""Writes of the accounts app."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from accounts.models import User
from wallet_project.errors import EmailTaken


def user_create(*, email: str, password: str, name: str) -> User:
    """Register a user; raises EmailTaken when the email is in use, whatever its case."""
    email = User.objects.normalize_email(email).lower()
    if User.objects.filter(email__iexact=email).exists():
        raise EmailTaken()
    try:
        with transaction.atomic():
            return User.objects.create_user(email=email, password=password, name=name)
    except IntegrityError as exc:  # a concurrent registration of the same email won the race
        raise EmailTaken() from exc
