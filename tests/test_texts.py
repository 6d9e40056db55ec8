"""Every text a parent reads exists, and every region placeholder is filled, in every region."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from texts import Texts, TextsError, available_regions, load_region, plural_form

ROOT = Path(__file__).resolve().parent.parent
CODE_DIRS = ("bot", "handlers", "storage")
# Literal text keys passed to the texts API: ctx.say("x.y"), ctx.texts("x.y"), ctx.button(...)
# Region fields a profile may leave empty; texts using them are shown only when set.
OPTIONAL_REGION_FIELDS = {"hotline_email", "navigator_url_alt"}
KEY_USE = re.compile(
    r"""\b(?:say|texts|button|raw|has)\(\s*["']([a-z0-9_]+(?:\.[a-z0-9_]+)+)["']"""
)


def _used_keys() -> set[tuple[str, str]]:
    found = set()
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            for key in KEY_USE.findall(path.read_text(encoding="utf-8")):
                found.add((key, str(path.relative_to(ROOT))))
    return found


@pytest.mark.parametrize("region_id", available_regions())
def test_every_text_renders_with_every_region_placeholder_filled(region_id):
    texts = Texts(load_region(region_id))
    for key in texts.keys():
        value = texts.raw(key)
        for template in value if isinstance(value, list) else [value]:
            params = {name: "X" for name in Texts.placeholders(template) if name not in ("region",)}
            rendered = template.format(region=texts.region, **params)
            assert "{" not in rendered and "}" not in rendered, (key, rendered)
            for _, field, _, _ in string.Formatter().parse(template):
                if field and field.startswith("region."):
                    name = field.split(".", 1)[1]
                    if name in OPTIONAL_REGION_FIELDS:
                        continue
                    attribute = getattr(texts.region, name)
                    assert str(attribute).strip(), f"{key}: {field} is empty in {region_id}"


def test_every_text_key_used_in_code_exists():
    texts = Texts(load_region("stavropol"))
    missing = sorted(f"{key} (in {where})" for key, where in _used_keys() if not texts.has(key))
    assert not missing, "texts used in code but missing under texts/ru: " + ", ".join(missing)
    assert len(_used_keys()) > 10


def _string_literals(path: Path) -> list[tuple[int, str]]:
    """String constants in code, docstrings excluded."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if id(node) not in docstrings
    ]


def test_no_parent_facing_russian_text_in_python_code():
    word = re.compile(r"[А-Яа-яЁё]{2,}")
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {value[:60]!r}"
        for folder in CODE_DIRS
        for path in (ROOT / folder).rglob("*.py")
        for line, value in _string_literals(path)
        if word.search(value)
    ]
    assert not offenders, "parent-facing text belongs under texts/:\n" + "\n".join(offenders)


def test_regions_differ_where_they_should():
    stavropol, tomsk = load_region("stavropol"), load_region("tomsk")
    assert stavropol.navigator_url != tomsk.navigator_url
    assert stavropol.hotline_phone != tomsk.hotline_phone
    assert {m.name for m in stavropol.municipalities}.isdisjoint(
        m.name for m in tomsk.municipalities
    )


def test_missing_region_names_the_file_and_the_alternatives():
    with pytest.raises(TextsError) as error:
        load_region("atlantis")
    assert "atlantis.toml" in str(error.value) and "stavropol" in str(error.value)


@pytest.mark.parametrize(
    ("n", "form"),
    [(1, 0), (21, 0), (2, 1), (4, 1), (22, 1), (5, 2), (11, 2), (12, 2), (14, 2), (100, 2), (0, 2)],
)
def test_russian_plural_forms(n, form):
    assert plural_form(n) == form
