"""Every text a parent reads exists, and every region placeholder is filled, in every region."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from texts import REGIONS_DIR, Texts, TextsError, available_regions, load_region, plural_form
from texts.grammar import wrapped

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
            # As Texts renders them: values that take agreement specs ("{n:год,gent}").
            params = {
                name: wrapped("X") for name in Texts.placeholders(template) if name != "region"
            }
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


# Facts that hold only in Stavropol krai, or only on Navigators whose personal account is
# described in the domain notes (not Tomsk's, where staff issue the certificate in person).
STAVROPOL_ONLY = (
    "Ставропол",
    "8652",
    "rmc126",
    "р26",
    "«Управление сертификатом»",
    "«Получить сертификат»",
    "«Активировать сертификат»",
)


def _rendered(texts: Texts) -> dict[str, str]:
    out = {}
    for key in texts.keys():
        value = texts.raw(key)
        templates = value if isinstance(value, list) else [value]
        names = set().union(*(Texts.placeholders(t) for t in templates)) - {"region", "n"}
        out[key] = texts(key, **{name: "X" for name in names}, n=1)
    return out


def test_tomsk_texts_carry_no_stavropol_facts_and_say_how_tomsk_issues_certificates():
    rendered = _rendered(Texts(load_region("tomsk")))
    leaks = sorted(
        f"{key}: {fact}"
        for key, text in rendered.items()
        for fact in STAVROPOL_ONLY
        if fact in text
    )
    assert not leaks, leaks
    assert "муниципальный орган управления образованием" in rendered["certificate.how"]
    assert "Сгенерировать" not in rendered["certificate.how"]  # staff's button, not the parent's
    assert "заявление и согласие" in rendered["confirmation.intro"]
    # The shared text keeps the personal-account path the Stavropol profile relies on.
    stavropol = _rendered(Texts(load_region("stavropol")))
    assert "«Управление сертификатом» → «Инструкции»" in stavropol["certificate.how"]


def test_a_region_may_replace_only_existing_texts_keeping_their_shape(tmp_path):
    source = (REGIONS_DIR / "stavropol.toml").read_text(encoding="utf-8")
    anchor = "[hotline]\n"
    cases = {
        '[texts.menu]\nchoose = "Что вас интересует?"\n': None,
        '[texts.menu]\nno_such_key = "x"\n': "replaces 'menu.no_such_key'",
        '[texts.children]\nyears = "x"\n': "'children.years' must keep the shape",
    }
    for block, error in cases.items():
        (tmp_path / "stavropol.toml").write_text(
            source.replace(anchor, block + "\n" + anchor, 1), encoding="utf-8"
        )
        region = load_region("stavropol", tmp_path)
        if error is None:
            assert Texts(region)("menu.choose") == "Что вас интересует?"
            assert Texts(load_region("stavropol"))("menu.choose") == "Выберите, что вас интересует:"
        else:
            with pytest.raises(TextsError) as failure:
                Texts(region)
            assert error in str(failure.value)
