"""Step 2, compute: quota periods, where each key stands in its period, and when it would run out."""
