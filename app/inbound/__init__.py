"""Everything that arrives from outside: ``/webhooks`` → verify → record (idempotent) → intake."""
