"""Polling on a schedule: one job per source and cadence, and the poll itself."""
