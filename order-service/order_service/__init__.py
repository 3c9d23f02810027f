"""Order service: orders, checkout and the order lifecycle."""
