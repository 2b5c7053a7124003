"""Jinja templates shipped with mlgen, one folder per target."""
