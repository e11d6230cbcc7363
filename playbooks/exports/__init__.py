"""Playbook downloads: Markdown for tickets and CACAO 2.0 JSON for SOAR platforms."""
