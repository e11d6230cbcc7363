"""Playbooks as code: reading, checking, loading and exporting `content/playbooks/`."""
