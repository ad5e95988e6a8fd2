"""The newest samples of every source and what is known about its polls; frozen snapshots for readers."""
