"""Reading and validating collector.toml: the types a config becomes, the TOML reader, per-plugin options."""
