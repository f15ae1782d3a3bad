"""Cross-cutting pieces of the cloud: settings, database, security."""
