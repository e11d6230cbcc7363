"""REST API of playbooks, under /api/v1/playbooks/."""
