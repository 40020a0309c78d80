"""Statements and balances at a point in time: reads of the ledger's chain, written out as JSON, CSV or PDF."""
