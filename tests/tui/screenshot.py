"""Save the main screen, drawn from the fakes, as SVG and PNG in screenshots/.

Run it with ``.venv/bin/python -m tests.tui.screenshot``; the PNG needs ``rsvg-convert`` (librsvg2-bin).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

from tests.tui.fakes import settled_frame, still_app

OUT = Path(__file__).resolve().parents[2] / "screenshots"
SIZES = {"main-120x40": (120, 40), "main-80x24": (80, 24)}


async def save(name: str, size: tuple[int, int]) -> Path:
    app = still_app()
    async with app.run_test(size=size) as pilot:
        await settled_frame(pilot)
        return Path(app.save_screenshot(filename=f"{name}.svg", path=str(OUT)))


def main() -> None:
    OUT.mkdir(exist_ok=True)
    converter = shutil.which("rsvg-convert")
    for name, size in SIZES.items():
        svg = asyncio.run(save(name, size))
        print(svg)
        if converter is None:
            print("rsvg-convert is missing (apt-get install librsvg2-bin): no PNG")
            continue
        png = svg.with_suffix(".png")
        subprocess.run([converter, "-o", str(png), str(svg)], check=True)
        print(png)


if __name__ == "__main__":
    main()
