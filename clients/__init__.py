"""paperx clients."""
