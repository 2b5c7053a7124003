"""Keeping generated files current: plan (pure), local (the disk), check, the lock, merges, writes.
"""
