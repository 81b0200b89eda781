"""Tenants (merchants using Rebound) and the API tokens that act for them."""
