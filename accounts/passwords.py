"""Django's common-password check, without Django's list kept in every web worker.

Django's `CommonPasswordValidator` reads its 20,000 common passwords into a set
when it is made, and Django keeps its validators for the life of the process
(`get_default_password_validators` is cached): 1.6 MB in every web worker that
has validated one password (a registration), for a check that runs once per
registration. This one reads the same gzipped list (80 KB) at each check, about
5 ms, beside the password's hashing (hundreds of milliseconds); its verdicts,
message and code are Django's (docs/PERFORMANCE.md, "Worker memory").
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError


class CommonPasswordValidator(password_validation.CommonPasswordValidator):
    """Refuses a password that is, lowercased and stripped, on the list (Django's own by default)."""

    def __init__(self, password_list_path: str | Path | None = None) -> None:
        self.password_list_path = Path(password_list_path or self.DEFAULT_PASSWORD_LIST_PATH)

    def validate(self, password: str, user: Any = None) -> None:
        if self.listed(password.lower().strip()):
            raise ValidationError(self.get_error_message(), code="password_too_common")

    def listed(self, candidate: str) -> bool:
        """Whether `candidate` is a line of the list (each line stripped), gzipped or, as Django allows, plain."""
        try:
            with gzip.open(self.password_list_path, "rt", encoding="utf-8") as lines:
                return any(line.strip() == candidate for line in lines)
        except gzip.BadGzipFile:
            with open(self.password_list_path, encoding="utf-8") as lines:
                return any(line.strip() == candidate for line in lines)
