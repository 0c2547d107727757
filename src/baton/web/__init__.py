"""The console: server-rendered pages where people hold the baton (an edge, like the API).

Every action a page offers calls runtime/commands.py, exactly as the API does, so it is
checked and audited the same way; the permission check is rbac's.
"""
