"""The Prometheus side: a custom collector over the store's snapshot and collectord's self-metrics."""
