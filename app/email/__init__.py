"""Inbound email: parsing, reply extraction, threading, outbound mail building."""
