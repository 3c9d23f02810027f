"""Auth service: users, passwords, tokens, admin user management."""
