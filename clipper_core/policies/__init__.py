"""Helpers for selection policies (the built-in one and plugins): config readers, rewards, combine helpers."""
