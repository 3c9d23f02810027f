"""Payment service: m-Pesa (Daraja STK Push) and Stripe payments, webhooks, refunds."""
