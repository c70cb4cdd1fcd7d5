"""The Lambda zip is reproducible and holds exactly what the Lambdas import."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from scripts import package


def _names(data: bytes) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


def test_building_twice_gives_identical_bytes(tmp_path: Path) -> None:
    first = package.write(package.build(), tmp_path / "a")
    second = package.write(package.build(), tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    assert first.name == second.name  # the content hash names the file


def test_zip_holds_the_lambdas_and_tenacity_but_not_boto3() -> None:
    names = _names(package.build().data)
    assert "lambdas/contracts.py" in names
    assert "lambdas/submitter/handler.py" in names
    assert "lambdas/monitor/handler.py" in names
    assert "tenacity/__init__.py" in names
    assert not any(n.startswith(("boto3/", "botocore/")) for n in names)


def test_entries_are_sorted_with_fixed_dates_and_modes() -> None:
    archive = zipfile.ZipFile(io.BytesIO(package.build().data))
    infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o644}


def test_bytecode_and_stray_files_are_left_out(tmp_path: Path) -> None:
    source = tmp_path / "lambdas"
    (source / "__pycache__").mkdir(parents=True)
    (source / "__init__.py").write_text("")
    (source / "handler.py").write_text("def handler(event, context):\n    return event\n")
    (source / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"\0")
    (source / "handler.py~").write_text("editor backup")
    names = _names(package.build(lambdas_dir=source, dependencies=()).data)
    assert names == ["lambdas/__init__.py", "lambdas/handler.py"]


def test_a_code_change_changes_the_s3_key(tmp_path: Path) -> None:
    source = tmp_path / "lambdas"
    source.mkdir()
    (source / "__init__.py").write_text("")
    before = package.build(lambdas_dir=source, dependencies=())
    (source / "__init__.py").write_text("# changed\n")
    after = package.build(lambdas_dir=source, dependencies=())
    assert before.s3_key != after.s3_key
