"""The plugin host: the plugin API (SourcePlugin, PollContext), the hook specs, the plugin manager, metric names."""
