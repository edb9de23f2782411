"""Everything that talks to MLflow: the tracked run, the registry, export and promotion."""
