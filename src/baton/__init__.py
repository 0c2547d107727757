"""Baton: AI-integrated IT operations. AI runs the tasks; humans hold the baton."""

__version__ = "0.1.0"
