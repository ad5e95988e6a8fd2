"""``collectord backfill``: past daily values as timestamped OpenMetrics (docs/backfill.md).

- :mod:`collectord.backfill.points`: points one per series and time, JSONL records read,
  the OpenMetrics text written.
- :mod:`collectord.backfill.state`: the progress kept in ``state_dir`` to resume.
- :mod:`collectord.backfill.command`: the command (reads the plugins' history hooks through
  the daemon's Graph client and governor).
"""
