"""Model experiments: the shadow / canary report and promotion (variants run in the engine)."""
