"""Wallets, balances, currencies and exchange rates in the back office.

Nothing here writes an amount: a balance is adjusted by booking a DEPOSIT or
WITHDRAWAL entry through transactions.services, a wallet is frozen through
wallets.services.wallet_set_frozen, and a new exchange rate goes through
wallets.services.exchange_rate_create, which closes the current one. Old rates
and ledger-backed amounts are read-only for everyone, superusers included.

Each of those three actions is a two-step form (wallet_project.admin_forms):
strict number input, a confirmation page showing old → new, and a required
reason, recorded with the action in the staff-action history (StaffAction) in
the same database transaction.
"""

# Importing the modules registers their admin classes.
from wallets.admin import balances, rates, staff_actions, wallets

__all__ = ["balances", "rates", "staff_actions", "wallets"]
