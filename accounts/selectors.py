"""Reads of the accounts app."""

from __future__ import annotations

from accounts.models import User
from wallet_project.errors import InactiveAccount


def actor_ensure_active(*, actor: User | None) -> None:
    """Refuse an actor whose account is deactivated (or gone); None is the system itself. Raises InactiveAccount.

    Read from the database, never from the instance: an API caller's user is
    built from its access token alone, which outlives a deactivation by up to
    the token's lifetime.
    """
    if actor is not None and not User.objects.filter(pk=actor.pk, is_active=True).exists():
        raise InactiveAccount()
