"""Holds: money reserved on a balance now, captured (in one or several parts), voided, or left to expire.

* `services`: create, capture, void, and the expiry sweep, each one posting on the one road.
* `selectors`: a user's holds, one hold, and what a balance holds as of now.
* `serializers`, `views`: the `/api/v1/holds/` endpoints (the contract is issue #16's text, API.md "Additions").
* `admin`: the back office's holds pages (read-only, filtered by the status as of now) and the void.

The money rules live in the posting engine (`transactions.posting`): a hold is
a `Reserve` step, a capture a CAPTURE leg plus the release of what it uses.
"""
