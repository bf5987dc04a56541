"""Step 3, publish: CloudWatch metrics for the keys that matter, the monitor's own health, and a record
of every key and plan for the function's log."""
