"""Image references, every dataset's naming convention, and rewrite rules from TOML."""

from __future__ import annotations

from pathlib import Path

import pytest

from swebox.errors import BadInput
from swebox.images.reference import ImageRef
from swebox.tasks.resolver import ImageRules, load_rules


@pytest.mark.parametrize(("text", "registry", "path", "tag", "normalized"), [
    ("python", None, "python", None, "docker.io/library/python:latest"),
    ("namanjain12/aiohttp_final:f0d7", None, "namanjain12/aiohttp_final", "f0d7",
     "docker.io/namanjain12/aiohttp_final:f0d7"),
    ("localhost:5000/a/b:1", "localhost:5000", "a/b", "1", "localhost:5000/a/b:1"),
    ("vmvm-registry.fbinfra.net/repomate_image_activ_pytest/randovania_randovania:bd8e",
     "vmvm-registry.fbinfra.net", "repomate_image_activ_pytest/randovania_randovania", "bd8e",
     "vmvm-registry.fbinfra.net/repomate_image_activ_pytest/randovania_randovania:bd8e"),
    ("sweb.eval.x86_64.django__django-1:latest", None, "sweb.eval.x86_64.django__django-1",
     "latest", "docker.io/library/sweb.eval.x86_64.django__django-1:latest"),
])
def test_reference_parsing(text: str, registry: str | None, path: str, tag: str | None,
                           normalized: str) -> None:
    ref = ImageRef.parse(text)
    assert (ref.registry, ref.path, ref.tag) == (registry, path, tag)
    assert ref.normalized() == normalized
    assert str(ref) == text
    assert ref.same_image(ImageRef.parse(normalized))


def test_reference_digest_and_short() -> None:
    ref = ImageRef.parse("ghcr.io/org/img@sha256:" + "a" * 64)
    assert ref.digest and ref.tag is None and ref.repository == "img"
    assert ImageRef.parse("reg.io/ns/app:v2").short() == "app:v2"
    assert ImageRef.parse("reg.io/ns/app:v2").short(keep_namespace=True) == "ns/app:v2"


@pytest.mark.parametrize("bad", ["", "UPPER/case", "a//b", "a:b:c:d/e", "x@sha256:zz"])
def test_bad_references(bad: str) -> None:
    with pytest.raises(BadInput):
        ImageRef.parse(bad)


def test_conventions_and_overrides() -> None:
    r = ImageRules()
    assert r.swebench("django__django-11099") == \
        "swebench/sweb.eval.x86_64.django_1776_django-11099:latest"
    assert r.swegym("getmoto__moto-7365") == \
        "xingyaoww/sweb.eval.x86_64.getmoto_s_moto-7365:latest"
    assert r.swesmith("swesmith/pandas-dev__pandas.95280573") == \
        "jyangballin/swesmith.x86_64.pandas-dev_1776_pandas.95280573:latest"
    assert r.multiswebench("Google", "gson", 1093) == "mswebench/google_m_gson:pr-1093"
    o = ImageRules(arch="arm64", registry="mirror.local:5000",
                   namespaces={"swebench": "myorg", "swesmith": "swebench"})
    assert o.swebench("a__b-1") == "mirror.local:5000/myorg/sweb.eval.arm64.a_1776_b-1:latest"
    assert o.swesmith("x", "swesmith.x86_64.o__r.12345678") == \
        "mirror.local:5000/swebench/swesmith.arm64.o_1776_r.12345678:latest"


def test_rules_from_toml(tmp_path: Path) -> None:
    f = tmp_path / "rules.toml"
    f.write_text('''
arch = "x86_64"
[namespaces]
swebench = "mirror"
[[rewrite]]
match = "vmvm-registry.fbinfra.net/*"
local = "{repository}:{tag}"
store = "s3://kuberha-velora/velora-files/images/{repository}-{tag}.tar"
[[rewrite]]
match = "*"
local = "{path}:{tag}"
''')
    rules = load_rules(f)
    ref = "vmvm-registry.fbinfra.net/repomate_image_activ_pytest/randovania_randovania:bd8e6fa"
    assert rules.local_name(ref) == "randovania_randovania:bd8e6fa"
    assert rules.store_path(ref) == \
        "s3://kuberha-velora/velora-files/images/randovania_randovania-bd8e6fa.tar"
    assert rules.local_name("ghcr.io/a/b:1") == "a/b:1"
    assert rules.store_path("ghcr.io/a/b:1") is None
    assert rules.swebench("a__b-1").startswith("mirror/")


@pytest.mark.parametrize(("content", "message"), [
    ("arch = [", "not valid TOML"),
    ("[[rewrite]]\nlocal = 'x'\n", "match"),
    ("colour = 'blue'\n", "colour"),
])
def test_bad_rules_files(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "rules.toml"
    f.write_text(content)
    with pytest.raises(BadInput, match=message):
        load_rules(f)


def test_bad_template_is_reported() -> None:
    rules = ImageRules.model_validate({"rewrite": [{"match": "*", "local": "{nope}"}]})
    with pytest.raises(BadInput, match="template"):
        rules.local_name("a/b:1")
