"""Text keys the guided dialogues build at run time exist in every region."""

from __future__ import annotations

import pytest

from handlers import certificate, registration
from texts import Texts, available_regions, load_region


def _dynamic_keys() -> list[str]:
    keys = []
    for n in range(1, registration.TOTAL + 1):
        keys += [f"registration.titles.s{n}", f"registration.steps.s{n}"]
        assert set(registration.PROBLEMS[n]) <= set(registration.ALL_PROBLEMS)
    for problem in registration.ALL_PROBLEMS:
        keys += [f"registration.problems.{problem}", f"registration.answers.{problem}"]
    for topic in certificate.TOPICS:
        keys.append(f"certificate.{topic}_button")
    for status in certificate.STATUSES:
        keys += [f"certificate.statuses.{status}", f"certificate.status_buttons.{status}"]
    for kind in ("yes", "no", "unknown"):
        keys.append(f"certificate.statuses.uchet_municipality_{kind}")
    keys += [f"certificate.check.{key}" for key, _ in certificate.AGE_BUTTONS]
    return keys


@pytest.mark.parametrize("region_id", available_regions())
def test_every_built_key_renders(region_id):
    texts = Texts(load_region(region_id))
    for key in _dynamic_keys():
        assert texts(key, name="X", n=1).strip(), key


def test_every_step_has_a_problem_list():
    assert sorted(registration.PROBLEMS) == list(range(1, registration.TOTAL + 1))
    offered = {p for problems in registration.PROBLEMS.values() for p in problems}
    assert offered == set(registration.ALL_PROBLEMS)
