"""Limits that keep evaluation of an unreviewed contract bounded."""

MAX_CONTRACT_BYTES = 1_000_000
MAX_NESTING = 64
