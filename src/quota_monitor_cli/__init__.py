"""The quota-monitor command line."""
