"""Task runners: one class per task, configured entirely by a model's manifest."""
