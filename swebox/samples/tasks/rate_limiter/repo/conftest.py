# Keeps the repository root importable when running ``python -m pytest``
# from a source checkout.
