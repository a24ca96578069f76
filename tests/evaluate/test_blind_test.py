"""The blind test for curators: the page's sides and key, and the fooling rate of votes."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from archive_colorizer.errors import ConfigError
from archive_colorizer.evaluate import blind


def _pairs(photos) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Real photographs and a stand-in colorization of each: its colours swapped (R and B)."""
    names = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle", "immunohistochemistry")
    crops = {name: np.ascontiguousarray(photos[name][:96, :128]) for name in names}
    return [(name, crop, np.ascontiguousarray(crop[..., ::-1])) for name, crop in crops.items()]


def _decoded(path) -> np.ndarray:
    with Image.open(io.BytesIO(path.read_bytes())) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_the_page_shows_each_pair_in_the_keys_order_and_reveals_nothing(photos, tmp_path):
    pairs = _pairs(photos)
    url = blind.write_blind_test(str(tmp_path), pairs, seed=7)
    folder = tmp_path / blind.FOLDER
    assert url == str(folder / blind.PAGE_NAME)
    key = json.loads((folder / blind.KEY_NAME).read_text())
    page = (folder / blind.PAGE_NAME).read_text()
    shown = json.loads(page.split("const pairs = ", 1)[1].split(";\n", 1)[0])
    assert [p["id"] for p in shown] == [p["id"] for p in key["pairs"]] and len(shown) == 6
    sides = [p["real"] for p in key["pairs"]]
    assert set(sides) == {"A", "B"}  # both sides hold real photographs somewhere (seed 7)
    for (name, real, colorized), on_page, answer in zip(pairs, shown, key["pairs"], strict=True):
        assert answer["image"] == name
        fake_side = "B" if answer["real"] == "A" else "A"
        # The side the key calls real shows the real photograph (JPEG q92: within a few levels).
        assert np.abs(_decoded(folder / on_page[answer["real"]]) - real).mean() < 3
        assert np.abs(_decoded(folder / on_page[fake_side]) - colorized).mean() < 3
    assert "key.json" not in page and not any(name in page for name, _, _ in pairs)
    names = sorted(p.name for p in (folder / "img").iterdir())
    assert len(names) == 12 and all(len(n) == len("0123456789abcdef.jpg") for n in names)
    again = tmp_path / "again"
    blind.write_blind_test(str(again), pairs, seed=7)
    assert json.loads((again / blind.FOLDER / blind.KEY_NAME).read_text()) == key  # the same seed, the same test


def _key(sides: str) -> dict:
    return {"test_id": "t1", "pairs": [{"id": f"p{i:03d}", "image": f"img{i}", "real": s} for i, s in enumerate(sides)]}


def _votes(picks: str, voter: str = "") -> dict:
    votes = [{"pair": f"p{i:03d}", "picked": side, "ms": 900} for i, side in enumerate(picks)]
    return {"format": blind.VOTES_FORMAT, "test_id": "t1", "voter": voter, "votes": votes}


def test_fooling_rate_and_its_wilson_interval():
    key = _key("ABABABABAB")
    # Voter 1 is fooled on pairs 0-2 (picks the other side), right on the rest: 3 of 10.
    summary = blind.summarize_votes(key, [_votes("BABBABABAB", "ann")])
    assert (summary["fooled"], summary["votes"], summary["fooling_rate"]) == (3, 10, 0.3)
    # Wilson (1927) score interval for 3 of 10 at 95%: 0.1078 .. 0.6032.
    assert summary["ci95"] == pytest.approx([0.1078, 0.6032], abs=5e-5)
    assert summary["per_image"]["img0"] == {"fooled": 1, "votes": 1}
    two = blind.summarize_votes(key, [_votes("BABBABABAB", "ann"), _votes("ABABABABAB")])
    assert (two["fooled"], two["votes"], two["voters"]) == (3, 20, ["ann", "voter 2"])
    assert two["ci95"] == pytest.approx([0.0524, 0.3604], abs=5e-5)  # 3 of 20
    line = blind.format_votes(summary)
    assert line.startswith("fooling rate 0.300 (95% interval 0.108-0.603)") and "3 of 10 votes by 1 voter" in line


def test_votes_of_another_test_or_an_unknown_pair_are_refused_by_name():
    key = _key("AB")
    with pytest.raises(ConfigError, match="votes file 1 is not a vote of this blind test"):
        blind.summarize_votes(key, [dict(_votes("AB"), test_id="other")])
    with pytest.raises(ConfigError, match="unknown pair"):
        blind.summarize_votes(key, [_votes("ABA")])
    with pytest.raises(ConfigError, match="no vote"):
        blind.summarize_votes(key, [_votes("")])
