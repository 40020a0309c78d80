"""The common-password check that reads Django's list at each check (accounts/passwords.py)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError

from accounts.passwords import CommonPasswordValidator

DJANGO_LIST = Path(password_validation.__file__).resolve().parent / "common-passwords.txt.gz"


def verdict(validator: object, password: str) -> tuple[str, list[str]] | None:
    try:
        validator.validate(password)  # type: ignore[attr-defined]
    except ValidationError as exc:
        return exc.code or "", exc.messages
    return None


def sample_passwords() -> list[str]:
    """Every 400th password of Django's list, each also in capitals and with surrounding spaces, and others."""
    with gzip.open(DJANGO_LIST, "rt", encoding="utf-8") as lines:
        listed = [line.strip() for index, line in enumerate(lines) if index % 400 == 0]
    variants = [form for word in listed for form in (word, word.upper(), f"  {word} ")]
    return [*variants, "violet-tangerine-47-harbour", "Zq8#unlisted-passphrase", ""]


def test_its_verdicts_are_djangos() -> None:
    ours, djangos = CommonPasswordValidator(), password_validation.CommonPasswordValidator()
    passwords = sample_passwords()

    verdicts = [verdict(ours, password) for password in passwords]

    assert verdicts == [verdict(djangos, password) for password in passwords]
    assert ("password_too_common", ["This password is too common."]) in verdicts
    assert None in verdicts


def test_it_keeps_no_list_between_checks() -> None:
    validator = CommonPasswordValidator()

    with pytest.raises(ValidationError):
        validator.validate("password")

    assert validator.password_list_path == DJANGO_LIST
    assert all(isinstance(value, Path) for value in vars(validator).values()), "paths only, no passwords"


@pytest.mark.parametrize("packed", [True, False])
def test_it_reads_a_list_of_its_own_gzipped_or_plain(tmp_path: Path, packed: bool) -> None:
    path = tmp_path / "passwords.txt"
    text = "first-secret\nsecond-secret \r\n"
    if packed:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    validator = CommonPasswordValidator(path)

    assert verdict(validator, "Second-Secret") is not None
    assert verdict(validator, "third-secret") is None


def test_the_settings_use_it() -> None:
    kinds = [type(validator) for validator in password_validation.get_default_password_validators()]

    assert CommonPasswordValidator in kinds
    assert password_validation.CommonPasswordValidator not in [
        kind for kind in kinds if kind is not CommonPasswordValidator
    ]
