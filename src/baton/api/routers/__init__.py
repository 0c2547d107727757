"""API routers, one per domain word."""
