"""The region's consent text for personal-data processing (152-ФЗ), with its version.

`<region>.consent.toml` beside the region's profile (in `[bot] regions_dir`), or else
the shipped `texts/consent/<region>.toml`, holds `version` (stored with every consent
given, so a changed text is asked for again) and `text` (shown to the parent before
anything about a child is stored).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from texts import REGIONS_DIR, TEXTS_DIR, TextsError, _read_toml

CONSENT_DIR = TEXTS_DIR / "consent"


@dataclass(frozen=True)
class ConsentText:
    version: str
    text: str


def consent_path(region_id: str, regions_dir: Path | None = None) -> Path:
    """Where the region's consent text is read from: beside the profile in a regions
    directory of the centre's own, else the one shipped with the package."""
    shipped = CONSENT_DIR / f"{region_id}.toml"
    if regions_dir is None or regions_dir.resolve() == REGIONS_DIR.resolve():
        return shipped
    beside = regions_dir / f"{region_id}.consent.toml"
    return beside if beside.exists() or not shipped.exists() else shipped


def load_consent(region_id: str, regions_dir: Path | None = None) -> ConsentText:
    path = consent_path(region_id, regions_dir)
    if not path.exists():
        raise TextsError(f"consent text for region '{region_id}' not found: expected file {path}")
    raw = _read_toml(path)
    version, text = raw.get("version"), raw.get("text")
    if not isinstance(version, str) or not version.strip():
        raise TextsError(f"{path}: 'version' must be a non-empty string")
    if not isinstance(text, str) or not text.strip():
        raise TextsError(f"{path}: 'text' must be a non-empty string")
    return ConsentText(version=version.strip(), text=text.strip())
