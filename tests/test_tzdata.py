"""Every region's time zone resolves from the `tzdata` package alone, as on a slim
image or Windows where the system has no zoneinfo files."""

from __future__ import annotations

import json
import subprocess
import sys

from texts import available_regions, load_region

PROBE = """
import json, sys, zoneinfo
zoneinfo.reset_tzpath(to=[])  # no system zoneinfo: only the tzdata package remains
from datetime import datetime, UTC
out = {}
for name in json.loads(sys.argv[1]):
    zone = zoneinfo.ZoneInfo(name)
    out[name] = datetime(2026, 1, 15, 12, tzinfo=UTC).astimezone(zone).utcoffset().total_seconds()
print(json.dumps(out))
"""


def test_region_time_zones_come_from_the_tzdata_package() -> None:
    zones = sorted({load_region(region).timezone for region in available_regions()})
    assert {"Europe/Moscow", "Asia/Tomsk"} <= set(zones)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(zones)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONTZPATH": "", "PATH": ""},
    )
    offsets = json.loads(result.stdout)
    assert offsets["Europe/Moscow"] == 3 * 3600
    assert offsets["Asia/Tomsk"] == 7 * 3600
    assert set(offsets) == set(zones)


def test_without_tzdata_and_system_files_a_zone_is_missing() -> None:
    """The probe above really depends on the package: with it hidden the zone fails."""
    probe = (
        "import sys, zoneinfo; sys.modules['tzdata'] = None; zoneinfo.reset_tzpath(to=[])\n"
        "try:\n    zoneinfo.ZoneInfo('Asia/Tomsk')\nexcept zoneinfo.ZoneInfoNotFoundError:\n"
        "    print('missing')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "missing"
