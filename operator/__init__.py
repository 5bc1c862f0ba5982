"""ALA operator: sizes LLM serving deployments described by LLMDeployment resources.

Imported as ``ala_operator`` (this folder is mapped to that name by pyproject.toml), so that
Python's own ``operator`` module stays reachable. It does the I/O and calls ``ala``.
"""
