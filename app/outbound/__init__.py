"""Outbound messages: the transactional outbox, its dispatcher, and canned responses."""
