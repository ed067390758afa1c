"""Small file helpers of the data-layer tests (imported by name: tests have no packages)."""

from pathlib import Path


def write_lines(path: Path, lines: list[str]) -> Path:
    """Write ``lines`` verbatim (newline-terminated): for malformed inputs, unlike write_kv."""
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()
