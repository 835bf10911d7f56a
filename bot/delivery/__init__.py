"""Delivery: the outbox, the sender and its gate, the provider, status callbacks, rate limit."""
