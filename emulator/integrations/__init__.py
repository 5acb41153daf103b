"""Service integrations, one module per service, behind the interface in base.py."""
