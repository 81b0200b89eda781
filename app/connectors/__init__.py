"""Integrations a tenant connects (helpdesks, later mailboxes): keys, encrypted secrets, settings."""
