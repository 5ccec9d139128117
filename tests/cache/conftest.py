"""The S3 fixtures of the image tests (a moto server on loopback), for cache sync."""

from tests.images.conftest import bucket, s3, s3_endpoint, store_env

__all__ = ["bucket", "s3", "s3_endpoint", "store_env"]
