"""Topologies and the composition root: the one place that knows every service."""
