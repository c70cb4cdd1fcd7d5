"""Reproducible Lambda zip: ``lambdas/`` plus its runtime dependencies.

The same sources give the same bytes: entries are sorted, every timestamp is 1980-01-01,
permissions are fixed and ``__pycache__`` is left out. So the zip's SHA-256 names its S3 key,
and a deploy with unchanged code changes nothing.

    python -m scripts.package --out dist     # prints the zip's path and sha256
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDAS_DIR = REPO_ROOT / "lambdas"

#: What the Lambdas import beyond the standard library. boto3/botocore are in AWS's Python
#: runtime, so they are not zipped (the runtime's copy is the one AWS keeps patched).
RUNTIME_DEPENDENCIES: tuple[str, ...] = ("tenacity",)

_FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold
_FILE_MODE = 0o644 << 16
_SKIP_PARTS = frozenset({"__pycache__"})
_SKIP_SUFFIXES = (".pyc", ".pyo")
#: Only these leave lambdas/ (no editor backups, notes or test data).
_SOURCE_SUFFIXES = (".py", ".typed", ".json")


@dataclass(frozen=True)
class LambdaPackage:
    data: bytes
    sha256: str

    @property
    def s3_key(self) -> str:
        """A content-addressed key: new code, new key, so CloudFormation sees the change."""
        return f"batchbridge/lambdas-{self.sha256[:24]}.zip"


def _keep(relative: Path) -> bool:
    return not (_SKIP_PARTS & set(relative.parts)) and not relative.name.endswith(_SKIP_SUFFIXES)


def _lambda_sources(lambdas_dir: Path) -> Iterator[tuple[str, Path]]:
    for path in lambdas_dir.rglob("*"):
        relative = path.relative_to(lambdas_dir.parent)
        if path.is_file() and path.suffix in _SOURCE_SUFFIXES and _keep(relative):
            yield relative.as_posix(), path


def _dependency_files(name: str) -> Iterator[tuple[str, Path]]:
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise SystemExit(
            f"batchbridge: the Lambda dependency {name!r} is not installed in this Python "
            f"({sys.executable}); run: pip install -e '.[dev]'"
        ) from None
    for file in dist.files or []:
        relative = Path(str(file))
        # RECORD lists hashes of files we do not ship (__pycache__); INSTALLER names pip.
        if relative.name in ("RECORD", "INSTALLER", "REQUESTED") or not _keep(relative):
            continue
        if relative.parts[0] == ".." or relative.is_absolute():
            continue  # scripts installed outside site-packages
        yield relative.as_posix(), Path(str(dist.locate_file(file)))


def build(
    lambdas_dir: Path = LAMBDAS_DIR, dependencies: tuple[str, ...] = RUNTIME_DEPENDENCIES
) -> LambdaPackage:
    """Build the zip in memory."""
    entries: dict[str, Path] = dict(_lambda_sources(lambdas_dir))
    for name in dependencies:
        entries.update(_dependency_files(name))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for arcname in sorted(entries):
            info = zipfile.ZipInfo(arcname, date_time=_FIXED_DATE)
            info.external_attr = _FILE_MODE
            info.create_system = 3  # unix, whatever the building host is
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[arcname].read_bytes(), compresslevel=9)
    data = buffer.getvalue()
    return LambdaPackage(data=data, sha256=hashlib.sha256(data).hexdigest())


def write(package: LambdaPackage, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / Path(package.s3_key).name
    path.write_bytes(package.data)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.package", description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "dist", help="output folder")
    args = parser.parse_args(argv)
    package = build()
    path = write(package, args.out)
    print(f"{path}  sha256={package.sha256}  {len(package.data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
