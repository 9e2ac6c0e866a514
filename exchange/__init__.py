"""paperx exchange."""
