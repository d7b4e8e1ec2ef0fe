"""Deciding and running jobs: identities, execution, the doit adapter."""
