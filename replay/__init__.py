"""paperx replay."""
