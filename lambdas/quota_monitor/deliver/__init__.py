"""Step 5, deliver: the alert messages, SNS, and the Slack webhook forwarder."""
