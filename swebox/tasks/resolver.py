"""Every dataset's image-naming convention, and the user's rewrite rules, in one place.

Conventions (names as the families publish them; namespace, registry and arch overridable):
- SWE-bench:        swebench/sweb.eval.x86_64.<instance_id, "__" -> "_1776_">:latest, lower-cased
- SWE-Gym:          xingyaoww/sweb.eval.x86_64.<instance_id, "__" -> "_s_">:latest, lower-cased
- SWE-smith:        jyangballin/swesmith.x86_64.<owner>_1776_<repo>.<commit8>:latest
- Multi-SWE-bench:  mswebench/<org>_m_<repo>:pr-<number>, lower-cased
- R2E-Gym:          the row's docker_image as given
- client CSV:       the row's image_storage_uri as given
- Graph Planner:    sandbox.docker_image as given

Rewrite rules (a TOML file) map a reference to a short local name (seed 000's Fix 2: strip the
unreachable registry so `FROM` and `docker run` use the loaded image) and to an object-store
tarball path (seed 000's `s3://<bucket>/<prefix>/<owner_repo>-<tag>.tar`). Templates may use
{registry} {namespace} {repository} {path} {tag} {digest}. The first matching rule wins.
"""

from __future__ import annotations

import fnmatch
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from swebox.errors import BadInput
from swebox.images.reference import ImageRef
from swebox.tasks.specs.model import TestRule

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    import tomli as tomllib

DEFAULT_NAMESPACES = {
    "swebench": "swebench",
    "swegym": "xingyaoww",
    "swesmith": "jyangballin",
    "multiswebench": "mswebench",
}


class RewriteRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    match: str = Field(description="glob over the reference as given, e.g. 'registry.x/*'")
    local: str | None = Field(default=None, description="template of the short local name")
    store: str | None = Field(default=None, description="template of the tarball's object path")

    def matches(self, ref: str) -> bool:
        return fnmatch.fnmatchcase(ref, self.match)


class ImageRules(BaseModel):
    """Naming overrides and rewrite rules; loaded from TOML with `load_rules`."""

    model_config = ConfigDict(extra="forbid")

    arch: str = "x86_64"
    registry: str = Field(default="", description="prefix for derived names, e.g. 'ghcr.io'")
    namespaces: dict[str, str] = Field(default_factory=dict)
    rewrite: list[RewriteRule] = Field(default_factory=list)
    mirrors: dict[str, list[str]] = Field(
        default_factory=dict, description="registry -> mirrors tried first, in order, e.g. "
        "{'docker.io': ['mirror.internal:5000']}; a mirror may carry a path prefix")
    tests: list[TestRule] = Field(
        default_factory=list, description="[[tests]]: test command, parser and set-up for the "
        "tasks a rule matches (repo or instance_id globs), before any dataset table")

    def namespace(self, family: str) -> str:
        return self.namespaces.get(family, DEFAULT_NAMESPACES.get(family, ""))

    def _qualify(self, family: str, name: str) -> str:
        ns = self.namespace(family)
        full = f"{ns}/{name}" if ns else name
        return f"{self.registry.rstrip('/')}/{full}" if self.registry else full

    # -- conventions --------------------------------------------------------------------------
    def swebench(self, instance_id: str) -> str:
        name = f"sweb.eval.{self.arch}.{instance_id.replace('__', '_1776_')}:latest".lower()
        return self._qualify("swebench", name)

    def swegym(self, instance_id: str) -> str:
        name = f"sweb.eval.{self.arch}.{instance_id.replace('__', '_s_')}:latest".lower()
        return self._qualify("swegym", name)

    def swesmith(self, repo: str, image_name: str | None = None) -> str:
        """From SWE-smith's `image_name` (swesmith.x86_64.owner__repo.commit8) or its `repo`
        (swesmith/owner__repo.commit8)."""
        if image_name:
            base = image_name.rsplit("/", 1)[-1]
            base = base.split(":", 1)[0]
            parts = base.split(".", 2)
            if len(parts) == 3 and parts[0] == "swesmith":
                base = f"swesmith.{self.arch}.{parts[2]}"
        else:
            base = f"swesmith.{self.arch}.{repo.rsplit('/', 1)[-1]}"
        return self._qualify("swesmith", base.replace("__", "_1776_").lower() + ":latest")

    def multiswebench(self, org: str, repo: str, number: int | str) -> str:
        return self._qualify("multiswebench", f"{org}_m_{repo}:pr-{number}".lower())

    # -- rewrite rules ------------------------------------------------------------------------
    def rule_for(self, reference: str) -> RewriteRule | None:
        return next((r for r in self.rewrite if r.matches(reference)), None)

    def local_name(self, reference: str) -> str:
        """The short local name for a reference (the reference itself when no rule applies)."""
        rule = self.rule_for(reference)
        if rule is None or rule.local is None:
            return reference
        return _render(rule.local, reference)

    def store_path(self, reference: str) -> str | None:
        """Where the image's `docker save` tarball lives in an object store, if a rule says."""
        rule = self.rule_for(reference)
        if rule is None or rule.store is None:
            return None
        return _render(rule.store, reference)


def _render(template: str, reference: str) -> str:
    ref = ImageRef.parse(reference)
    values = {"registry": ref.registry or "", "namespace": ref.namespace,
              "repository": ref.repository, "path": ref.path, "tag": ref.tag or "latest",
              "digest": ref.digest or ""}
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError) as e:
        raise BadInput(f"bad rewrite template {template!r}: {e}",
                       hint="use {registry} {namespace} {repository} {path} {tag} {digest}"
                       ) from e


def load_rules(path: str | Path | None) -> ImageRules:
    """Rules from a TOML file (None: the defaults)."""
    if path is None:
        return ImageRules()
    p = Path(path)
    try:
        data: dict[str, Any] = tomllib.loads(p.read_text())
    except OSError as e:
        raise BadInput(f"cannot read image rules {p}: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{p}: not valid TOML: {e}") from e
    try:
        return ImageRules.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise BadInput(f"{p}: {loc}: {err['msg']}",
                       hint="see docs/tasks.md for the rules file format") from e
