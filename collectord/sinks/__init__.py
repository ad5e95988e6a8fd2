"""Where samples go besides /metrics: the JSONL file."""
