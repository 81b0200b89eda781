"""Customers and the orders they bought, upserted from the merchant's systems."""
