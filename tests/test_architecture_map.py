"""docs/architecture.md names every module of the package, so the map cannot fall behind the code."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tracing_app"
MAP = (ROOT / "docs" / "architecture.md").read_text()


def modules() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in {"migrations", "management"} or path.name == "__init__.py":
            continue
        found.append(relative.as_posix())
    return found


@pytest.mark.parametrize("module", modules())
def test_the_map_names_every_module(module):
    package, _, name = module.rpartition("/")
    assert f"`{module}`" in MAP or (f"`{package}/" in MAP and f"`{name}`" in MAP), module
