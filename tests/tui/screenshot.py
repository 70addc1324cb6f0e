"""Save every scene of the cockpit (tests/tui/scenes.py), drawn from the fakes, as SVG and PNG.

Run it with ``.venv/bin/python -m tests.tui.screenshot [name ...]``; the PNG needs ``rsvg-convert``
(librsvg2-bin).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

from tests.tui.scenes import SCENES, Scene

OUT = Path(__file__).resolve().parents[2] / "screenshots"


async def save(scene: Scene) -> Path:
    app = scene.app()
    async with app.run_test(size=scene.size) as pilot:
        await scene.steps(pilot)
        return Path(app.save_screenshot(filename=f"{scene.name}.svg", path=str(OUT)))


def keep_spaces(svg: Path) -> None:
    """Textual writes a run of spaces as a text element of its own; without this, SVG renderers such as
    rsvg-convert drop the spaces that start one, and the columns of the picture run together."""
    svg.write_text(svg.read_text().replace("<svg ", '<svg xml:space="preserve" ', 1))


def main() -> None:
    OUT.mkdir(exist_ok=True)
    converter = shutil.which("rsvg-convert")
    wanted = set(sys.argv[1:])
    for scene in SCENES:
        if wanted and scene.name not in wanted:
            continue
        svg = asyncio.run(save(scene))
        keep_spaces(svg)
        print(svg)
        if converter is None:
            print("rsvg-convert is missing (apt-get install librsvg2-bin): no PNG")
            continue
        png = svg.with_suffix(".png")
        subprocess.run([converter, "-o", str(png), str(svg)], check=True)
        print(png)


if __name__ == "__main__":
    main()
