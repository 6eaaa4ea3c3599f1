"""The client side: HTTP client, credentials, transfers, and the sync engine."""
