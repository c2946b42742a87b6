"""Flags and conversations: flag links, flag search, message actions."""
