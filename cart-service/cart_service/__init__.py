"""Cart service: shopping carts."""
