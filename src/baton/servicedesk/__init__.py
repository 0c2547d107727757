"""Tickets, self-service catalogue, knowledge base and chat intake."""
