"""Date formats of the back office (LANGUAGE_CODE en-us, through FORMAT_MODULE_PATH).

A ledger is audited to the second, and its staff work across time zones:
every time the admin shows has seconds and names its zone (UTC, the
service's TIME_ZONE), e.g. "2026-11-25 10:05:03 UTC".
"""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
