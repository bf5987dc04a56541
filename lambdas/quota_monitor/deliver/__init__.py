"""Step 5, deliver: alert messages, SNS, EventBridge events, console links, the Slack webhook forwarder."""
