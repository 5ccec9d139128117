"""OpenHands' run_infer on swebox-supplied images without patching OpenHands: the names its
get_instance_docker_image computes, and local images tagged under them."""

from __future__ import annotations

import docker
import pytest

from swebox.integrations.openhands import openhands_image, tag_for_openhands
from swebox.tasks.model import Task


def test_names_as_openhands_computes_them() -> None:
    t = Task(instance_id="django__django-11333", repo="django/django")
    # evaluation/benchmarks/swe_bench/run_infer.py, get_instance_docker_image
    assert openhands_image(t) == "docker.io/xingyaoww/sweb.eval.x86_64.django_s_django-11333"
    assert openhands_image(t, "swe_bench_official") == \
        "docker.io/swebench/sweb.eval.x86_64.django_1776_django-11333:latest"
    # evaluation/benchmarks/multi_swe_bench/run_infer.py
    j = Task(instance_id="alibaba__fastjson2-2285", repo="alibaba/fastjson2", language="java")
    assert openhands_image(j, "multi_swe_bench") == "mswebench/alibaba_m_fastjson2:pr-2285"
    assert openhands_image(t, "multi_swe_bench", prefix="my/") == \
        "my/sweb.eval.x86_64.django_s_django-11333"
    with pytest.raises(Exception, match="unknown OpenHands benchmark"):
        openhands_image(t, "nope")


def test_local_images_get_openhands_names(sample_tasks: dict[str, Task]) -> None:
    tasks = [sample_tasks["ini_loader"], sample_tasks["paginate"],
             Task(instance_id="x__missing-1", image="nowhere/missing:1")]
    done = tag_for_openhands(tasks, benchmark="multi_swe_bench", prefix="swebox-test-oh",
                             language="java")
    api = docker.from_env()
    try:
        for t in done[:2]:
            assert t.error is None, t.error
            assert api.images.get(t.target).id == api.images.get(t.source).id
        assert done[2].error and "not in docker" in done[2].error
    finally:
        for t in done[:2]:
            try:
                api.images.remove(t.target)
            except docker.errors.APIError:
                pass
        api.close()
