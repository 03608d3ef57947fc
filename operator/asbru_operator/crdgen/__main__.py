"""Write crds/*.yaml and the chart's identical copies in charts/asbru/crds/.

Run from the repository root: ``python -m asbru_operator.crdgen [--root PATH] [--check]``.
``--check`` writes nothing and exits 1 when a file differs (for CI and the drift test).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asbru_operator.crdgen.definitions import rendered_files

OUTPUT_DIRS = ("crds", "charts/asbru/crds")


def stale_files(root: Path) -> list[Path]:
    """Files that are missing or differ from what the models generate now."""
    stale = []
    for directory in OUTPUT_DIRS:
        for name, text in rendered_files().items():
            path = root / directory / name
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
    return stale


def write_all(root: Path) -> list[Path]:
    """(Re)write every generated file; returns the paths written."""
    written = []
    for directory in OUTPUT_DIRS:
        (root / directory).mkdir(parents=True, exist_ok=True)
        for name, text in rendered_files().items():
            path = root / directory / name
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asbru_operator.crdgen", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="Repository root.")
    parser.add_argument("--check", action="store_true", help="Only report drift; exit 1 if any.")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.root)
        for path in stale:
            print(f"stale: {path}", file=sys.stderr)
        return 1 if stale else 0
    for path in write_all(args.root):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
