"""The posting engine and its parts: the one road of money.

* `movement`: what a movement is made of (`Leg`, its checks, `Booking`).
* `engine`: the road itself (`post`), and the step before the locks (`before_locks`).
* `planning`: validation in front of the road (`Plan`, `plan_and_post`).
* `rows`: the SQL (the balances as the rules see them, the writes), and its SQLite equivalents.
* `facts`: what this process knows of the balances it has read, to validate before the locks.
* `hooks`: the hook inside a posting's transaction, and the audit line after it.

Only `transactions.services` posts; other apps move money through its functions.
"""
