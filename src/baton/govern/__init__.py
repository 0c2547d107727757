"""Autonomy policy, approvals, kill switch, RBAC and the audit ledger."""
