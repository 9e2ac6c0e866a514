"""paperx exchange.journal."""
