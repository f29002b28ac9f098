"""The committed mechanism cards are reproduced by re-running their generation.

circuits/build_mechanism.py wrote circuits/NAME/mechanism.md; this re-runs it into a
temporary directory and requires the same Markdown, claim for claim (the card holds no
provenance, so only a changed measurement can change it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CIRCUITS = Path(__file__).resolve().parents[2] / "circuits"
sys.path.insert(0, str(CIRCUITS))

from build_mechanism import build  # noqa: E402


@pytest.mark.parametrize("name", ["tree-path", "tree-path-brinkmann"])
def test_committed_card_is_reproduced(name: str, tmp_path: Path) -> None:
    committed = (CIRCUITS / name / "mechanism.md").read_text()
    regenerated = build(name, tmp_path).read_text()
    assert regenerated == committed
