"""Liveness and readiness endpoints, and the worker heartbeat they read."""
