"""Reading container images without an engine: docker-archive tarballs, OCI layouts and
archives, registries over the OCI distribution API, and whiteout-correct extraction."""
