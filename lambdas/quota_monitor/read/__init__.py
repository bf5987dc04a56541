"""Step 1, read: API Gateway's usage plans, API keys and usage, inside the account's call budget."""
