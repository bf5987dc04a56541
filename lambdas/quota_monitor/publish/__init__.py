"""Step 3, publish: CloudWatch metrics for the keys that matter, and the monitor's own health."""
