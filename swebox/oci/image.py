"""What every image source gives the extractor: a config and an ordered list of layer blobs.

Sources (a docker-archive tarball, an OCI layout or archive, a registry) differ only in how a
blob's bytes are reached. `ImageSource.open_blob` returns the blob as stored (compressed or
not); `swebox.oci.layers.open_layer` recognises the compression by its magic bytes. Every
source checks what it reads against the digest it was promised and raises
`swebox.errors.CorruptData` at the end of a blob whose bytes do not match.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, Any, Protocol


@dataclass(frozen=True)
class Descriptor:
    """One blob: its media type, `sha256:<hex>` digest and size in bytes (-1 if unknown)."""

    media_type: str
    digest: str
    size: int = -1
    # For docker-archive layers the digest we can check is the uncompressed diff_id.
    annotations: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


class ImageSource(Protocol):
    """An image whose config and layers can be read without a container engine."""

    def describe(self) -> str:
        """Where the image comes from, for messages (a path, a reference)."""

    def config(self) -> dict[str, Any]:
        """The image config (OCI/Docker config JSON): `rootfs.diff_ids`, `config.WorkingDir`."""

    def layers(self) -> list[Descriptor]:
        """Layer blobs, base first."""

    def open_blob(self, desc: Descriptor) -> IO[bytes]:
        """A readable stream of the blob's stored bytes, digest-checked as it is read."""
