"""payment-provider: charges payments, once per idempotency key."""
