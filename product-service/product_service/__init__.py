"""Product service: catalogue, stock and stock reservations."""
