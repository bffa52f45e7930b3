"""Principals: tenants, accounts, groups, lists, roles and domains, and the audit log."""
