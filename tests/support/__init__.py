"""Real servers for tests, started on loopback ports: Dovecot (IMAP) and aiosmtpd (SMTP)."""
