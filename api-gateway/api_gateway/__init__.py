"""API gateway: one entry point on :5000 that checks tokens, limits rates and forwards."""
