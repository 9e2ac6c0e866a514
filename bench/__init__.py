"""paperx bench."""
