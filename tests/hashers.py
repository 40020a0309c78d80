"""A quick password hasher for the test process only.

PBKDF2 with Django's default 1,000,000 iterations takes about a second per
hash on these machines. This one writes ordinary `pbkdf2_sha256$1000$...`
hashes, which any process with the default hashers (a live gunicorn in the
fault tests) still verifies.
"""

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 1000
