# Makes the repository root importable so the test-suite runs from a plain
# checkout (``python -m pytest``) without installing the package first.
