"""Shared data helpers any plugin may use."""
