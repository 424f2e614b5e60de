"""Signals the catalog sends, for layers above it (it never imports them)."""

from django.dispatch import Signal

# Sent after an MLflow sync finished, with ``result`` (the sync's summary dict).
mlflow_synced = Signal()
