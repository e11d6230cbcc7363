"""Validation of detections against recorded attack events."""
