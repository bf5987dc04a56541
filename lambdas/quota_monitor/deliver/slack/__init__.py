"""The Slack webhook forwarder: its own Lambda function, subscribed to the alert topic."""
