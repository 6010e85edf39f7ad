"""The landing folder cannot be turned against the server, and volume blocks recover.

Each test lands files in a temporary landing folder and calls the ingestion (and the raw
checks in plain SQL) on a small DuckDB: symbolic links and special files are refused
without reading them, file names are read literally (never as a glob), empty and
header-only files are reported as such, a file that failed is not parsed again until it
changes, an XLSX sheet is read by what it holds rather than what it declares, and a
blocking volume floor compares files of the same cadence and clears when the offending
file leaves the landing folder.
"""

from __future__ import annotations

import os
import time
import zipfile
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.ingest import (
    IngestError,
    IngestOptions,
    ingest_file,
    landed_files,
    new_load_id,
    quarantine_refused,
    record_unreadable,
    refused_entries,
    scan_landing,
    unrecognised_files,
)
from pipelines.lib.mappings import Entity, load_entities
from pipelines.lib.quality import run_suite
from pipelines.lib.quality.duck import raw_connection
from pipelines.lib.quality.rules import cadence
from pipelines.lib.settings import load_settings
from pipelines.lib.warehouse import create_raw_views, quarantine_dir
from tests.test_quality import BITRIX_HEADER, bx_deal, outcomes_by_name, suite_of

ROOT = Path(__file__).resolve().parents[1]
ENTITY_LIST = load_entities(ROOT / "sources")
ENTITIES = {e.table: e for e in ENTITY_LIST}
DEALS = ENTITIES["bitrix__deal_snapshot"]
INVOICES = ENTITIES["onec__invoice"]
SECRET = "root:x:0:0:secret-marker-7f3a:/root:/bin/bash"


@pytest.fixture
def landing_env(settings_env: Path) -> Path:
    """Settings pointing at temporary folders (``settings_env``), the landing one made."""
    (settings_env / "landing").mkdir()
    return settings_env


def deals_text(lines: list[str], encoding: str = "cp1251") -> bytes:
    return ("\r\n".join([BITRIX_HEADER, *lines]) + "\r\n").encode(encoding)


def land_deals(tmp: Path, name: str, n: int, load_id: str | None = None, tag: str = "") -> Path:
    folder = tmp / "landing" / DEALS.folder
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(deals_text([bx_deal(i, tag=tag or name) for i in range(n)]))
    ingest_file(
        path, DEALS, tmp / "data", load_id or new_load_id(), display_path=f"{DEALS.folder}/{name}"
    )
    return path


def everything_written(data: Path) -> str:
    """Every value the data folder holds (raw, quarantine, manifest), as one text."""
    con = duckdb.connect()
    create_raw_views(con, data, ENTITY_LIST)
    parts = [str(con.execute("select * from raw.quarantine").fetchall())]
    for e in ENTITY_LIST:
        parts.append(str(con.execute(f'select * from raw."{e.table}"').fetchall()))
    con.close()
    parts += [p.read_text(encoding="utf-8") for p in data.rglob("*.json")]
    return "\n".join(parts)


# --------------------------------------------------------------------------- symbolic links


def test_symlink_to_a_file_outside_is_refused_and_nothing_of_it_is_read(landing_env: Path) -> None:
    tmp = landing_env
    secret = tmp / "outside" / "passwd"
    secret.parent.mkdir()
    secret.write_text(SECRET + "\n" + "daemon:x:1:1::/:/bin/false\n")
    folder = tmp / "landing" / DEALS.folder
    folder.mkdir(parents=True)
    link = folder / "deals_2026-11-20.csv"
    link.symlink_to(secret)
    (folder / "notes.txt").symlink_to(secret)  # unclaimed too: still refused, not "unrecognised"

    assert landed_files(tmp / "landing", DEALS) == []
    assert unrecognised_files(tmp / "landing", ENTITY_LIST) == []
    refused = dict(refused_entries(tmp / "landing"))
    assert refused[link] == (
        f"symbolic link to {secret} refused: links in the landing folder are not followed "
        "(copy the file in, or set ingest.allow_symlinks_inside_landing in settings.yml for "
        "links that stay inside the landing folder)"
    )
    with pytest.raises(IngestError, match=f"symbolic link to {secret} refused"):
        ingest_file(link, DEALS, tmp / "data", new_load_id(), display_path="x")

    shown = quarantine_refused(tmp / "landing", tmp / "data", "run-1")
    assert f"{DEALS.folder}/deals_2026-11-20.csv: symbolic link to {secret} refused" in shown[0]
    con = duckdb.connect()
    create_raw_views(con, tmp / "data", ENTITY_LIST)
    rows = con.execute(
        "select source_file, line, raw_text, file_sha256, reason from raw.quarantine order by 1"
    ).fetchall()
    con.close()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (f"{DEALS.folder}/deals_2026-11-20.csv", 0, "", ""),
        (f"{DEALS.folder}/notes.txt", 0, "", ""),
    ]
    assert all(r[4].startswith(f"symbolic link to {secret} refused") for r in rows)
    assert "secret-marker" not in everything_written(tmp / "data")
    # recorded once: a second run adds nothing
    quarantine_refused(tmp / "landing", tmp / "data", "run-2")
    assert len(list((quarantine_dir(tmp / "data") / "_refused").rglob("*.parquet"))) == 2


def test_symlinked_folder_is_not_walked(landing_env: Path) -> None:
    tmp = landing_env
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "deals_2026-11-20.csv").write_bytes(deals_text([bx_deal(1)]))
    folder = tmp / "landing" / DEALS.folder
    folder.mkdir(parents=True)
    (folder / "more").symlink_to(outside, target_is_directory=True)
    # the system folder itself as a link is refused as well
    (tmp / "landing" / "telephony_cloud").symlink_to(outside, target_is_directory=True)

    assert landed_files(tmp / "landing", DEALS) == []
    assert landed_files(tmp / "landing", ENTITIES["cloud_pbx__call"]) == []
    reasons = {p.name: r for p, r in refused_entries(tmp / "landing")}
    assert set(reasons) == {"more", "telephony_cloud"}
    assert reasons["more"].startswith(f"symbolic link to {outside} refused")


def test_links_inside_the_landing_folder_only_by_setting(
    landing_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp = landing_env
    folder = tmp / "landing" / DEALS.folder
    folder.mkdir(parents=True)
    real = folder / "archive" / "deals_2026-11-19.csv"
    real.parent.mkdir()
    real.write_bytes(deals_text([bx_deal(1), bx_deal(2)]))
    inside = folder / "deals_2026-11-20.csv"
    inside.symlink_to(real)
    secret = tmp / "passwd"
    secret.write_text(SECRET + "\n")
    outside = folder / "deals_2026-11-21.csv"
    outside.symlink_to(secret)

    files, refused = scan_landing(tmp / "landing", allow_inside=False)
    assert files == [real] and {p for p, _ in refused} == {inside, outside}

    monkeypatch.setenv("CRMWH_INGEST__ALLOW_SYMLINKS_INSIDE_LANDING", "true")
    allowed = IngestOptions.from_settings(load_settings())  # settings.yml / CRMWH_INGEST__*
    assert allowed.allow_symlinks_inside_landing
    assert landed_files(tmp / "landing", DEALS, allowed) == [real, inside]
    assert refused_entries(tmp / "landing", allowed) == [
        (outside, f"symbolic link to {secret} refused: it leads outside the landing folder")
    ]
    res = ingest_file(
        inside, DEALS, tmp / "data", new_load_id(), display_path="in.csv", options=allowed
    )
    assert res.rows_loaded == 2


def test_named_pipe_is_refused_without_opening_it(landing_env: Path) -> None:
    tmp = landing_env
    folder = tmp / "landing" / DEALS.folder
    folder.mkdir(parents=True)
    fifo = folder / "deals_2026-11-20.csv"
    os.mkfifo(fifo)  # opening it for reading would block forever
    assert landed_files(tmp / "landing", DEALS) == []
    assert refused_entries(tmp / "landing") == [
        (fifo, "named pipe (FIFO) refused: only regular files are read")
    ]
    with pytest.raises(IngestError, match="not a regular file"):
        ingest_file(fifo, DEALS, tmp / "data", new_load_id())


# --------------------------------------------------------------------------- glob characters


@pytest.mark.parametrize("name", ["deals_2026-11-2?.csv", "deals_[2]026.csv", "deals_*.csv",
                                  "deals_{a,b}.csv"])  # fmt: skip
def test_file_names_are_read_literally_not_as_globs(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "landing" / DEALS.folder
    folder.mkdir(parents=True)
    # files a glob reading of `name` would match too
    for decoy in ("deals_2026-11-20.csv", "deals_2026.csv", "deals_a.csv", "deals_x.csv"):
        (folder / decoy).write_bytes(deals_text([bx_deal(100 + i) for i in range(41)], "utf-8"))
    path = folder / name  # UTF-8: read in place, so DuckDB sees the landing path itself
    path.write_bytes(deals_text([bx_deal(i, tag="own") for i in range(40)], "utf-8"))
    shown = f"{DEALS.folder}/{name}"

    res = ingest_file(path, DEALS, tmp_path / "data", new_load_id(), display_path=shown)
    assert (res.rows_read, res.rows_loaded, res.rows_quarantined) == (40, 40, 0)
    con = duckdb.connect()
    create_raw_views(con, tmp_path / "data", ENTITY_LIST)
    names = con.execute("select distinct _source_file from raw.bitrix__deal_snapshot").fetchall()
    own = con.execute(
        "select count(*) from raw.bitrix__deal_snapshot where title like '%own'"
    ).fetchone()[0]
    quarantined = con.execute("select count(*) from raw.quarantine").fetchone()[0]
    con.close()
    assert names == [(shown,)] and own == 40 and quarantined == 0


# --------------------------------------------------------------------------- empty files


def test_empty_and_header_only_files_are_reported_as_such_and_do_not_block(
    tmp_path: Path,
) -> None:
    for day in (16, 17, 18, 19):
        land_deals(tmp_path, f"deals_2026-11-{day}.csv", 20)
    folder = tmp_path / "landing" / DEALS.folder
    (folder / "deals_2026-11-20.csv").write_bytes(b"")
    (folder / "deals_2026-11-21.csv").write_bytes(deals_text([]))
    load = new_load_id()
    empty = ingest_file(folder / "deals_2026-11-20.csv", DEALS, tmp_path / "data", load,
                        display_path="deals_2026-11-20.csv")  # fmt: skip
    header = ingest_file(folder / "deals_2026-11-21.csv", DEALS, tmp_path / "data", load,
                         display_path="deals_2026-11-21.csv")  # fmt: skip
    assert (empty.status, empty.warnings) == ("empty", ["empty file (0 bytes): nothing to load"])
    assert (header.status, header.warnings) == (
        "header_only",
        ["header only, no data rows: nothing to load"],
    )
    assert not any("missing" in w for w in empty.warnings + header.warnings)
    con = raw_connection(tmp_path / "data", ENTITY_LIST)
    assert con.execute(
        "select source_file, status, rows_read from raw.load_manifest where load_id = ? order by 1",
        [load],
    ).fetchall() == [
        ("deals_2026-11-20.csv", "empty", 0),
        ("deals_2026-11-21.csv", "header_only", 0),
    ]
    _, outcomes = run_suite(con, suite_of("bitrix__deal_snapshot"), engine="sql")
    con.close()
    got = outcomes_by_name(outcomes)
    assert got["volume__block"].passed and got["volume"].passed
    # seen once: the next run does not read them again
    again = ingest_file(folder / "deals_2026-11-20.csv", DEALS, tmp_path / "data", new_load_id())
    assert again.status == "duplicate"


# --------------------------------------------------------------------------- failed files


def ingest_or_record(
    path: Path, entity: Entity, data: Path, shown: str, options: IngestOptions | None = None
) -> object:
    """What the ingest asset does with one file."""
    load = new_load_id()
    try:
        return ingest_file(
            path, entity, data, load, display_path=shown, options=options or IngestOptions()
        )
    except IngestError as exc:
        record_unreadable(path, shown, entity, data, load, str(exc))
        return exc


def test_a_file_that_failed_is_not_parsed_again_until_it_changes(tmp_path: Path) -> None:
    folder = tmp_path / "landing" / INVOICES.folder
    folder.mkdir(parents=True)
    path = folder / "invoices_2026-11.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a workbook")
    data = tmp_path / "data"

    first = ingest_or_record(path, INVOICES, data, "invoices_2026-11.xlsx")
    assert isinstance(first, IngestError) and "cannot open as XLSX" in str(first)
    records = list((data / "failed").glob("*.json"))
    assert len(records) == 1
    qfile = next(quarantine_dir(data).rglob("*.parquet"))
    stamp = qfile.stat().st_mtime_ns

    second = ingest_or_record(path, INVOICES, data, "invoices_2026-11.xlsx")
    assert second.status == "failed" and second.rows_read == 0
    assert "cannot open as XLSX" in second.warnings[0]
    assert "retried when the file or its mapping changes" in second.warnings[0]
    assert qfile.stat().st_mtime_ns == stamp  # nothing written again

    path.write_bytes(xlsx_bytes(invoice_rows(2)))  # a corrected export: retried and loaded
    third = ingest_or_record(path, INVOICES, data, "invoices_2026-11.xlsx")
    assert third.status == "loaded" and third.rows_loaded == 2
    # a backfill retries even unchanged failures
    path2 = folder / "invoices_2026-10.xlsx"
    path2.write_bytes(b"broken")
    ingest_or_record(path2, INVOICES, data, "invoices_2026-10.xlsx")
    with pytest.raises(IngestError):
        ingest_file(path2, INVOICES, data, new_load_id(), retry_failed=True)


# --------------------------------------------------------------------------- XLSX bounds


def _cell(ref: str, value: str) -> str:
    if value.replace(".", "").isdigit() and value.count(".") == 1:
        return f'<c r="{ref}"><v>{value}</v></c>'
    return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'


def invoice_rows(n: int) -> str:
    header = ["Номер", "Дата", "Контрагент", "ИНН", "Сумма", "НДС", "Валюта", "Срок оплаты",
              "Ответственный", "Сделка"]  # fmt: skip
    cols = "ABCDEFGHIJ"
    out = [
        '<row r="1">'
        + "".join(_cell(f"{c}1", h) for c, h in zip(cols, header, strict=True))
        + "</row>"
    ]
    for i in range(n):
        r = i + 2
        values = [
            str(100 + i),
            "05.11.2026",
            "ООО Ромашка",
            "7707083893",
            "1200.5",
            "200.08",
            "RUB",
        ]
        out.append(
            f'<row r="{r}">'
            + "".join(_cell(f"{c}{r}", v) for c, v in zip(cols[: len(values)], values, strict=True))
            + "</row>"
        )
    return "".join(out)


def xlsx_bytes(rows_xml: str, dimension: str = "A1:J3") -> bytes:
    """A minimal workbook whose sheet declares `dimension` and holds `rows_xml`."""
    import io

    ns = "http://schemas.openxmlformats.org"
    parts = {
        "[Content_Types].xml": (
            f'<Types xmlns="{ns}/package/2006/content-types">'
            f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{ns}/package/2006/relationships"><Relationship Id="rId1" '
            f'Type="{ns}/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{ns}/spreadsheetml/2006/main" xmlns:r="{ns}/officeDocument/2006/relationships">'
            '<sheets><sheet name="Счета" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{ns}/package/2006/relationships"><Relationship Id="rId1" '
            f'Type="{ns}/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
            "</Relationships>"
        ),
        "xl/worksheets/sheet1.xml": (
            f'<worksheet xmlns="{ns}/spreadsheetml/2006/main"><dimension ref="{dimension}"/>'
            f"<sheetData>{rows_xml}</sheetData></worksheet>"
        ),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in parts.items():
            z.writestr(name, '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + text)
    return buf.getvalue()


def test_xlsx_declaring_a1_xfd100000_is_read_by_what_it_holds(tmp_path: Path) -> None:
    # two invoices, and an empty cell in the sheet's very last column at row 100000
    bomb = xlsx_bytes(invoice_rows(2) + '<row r="100000"><c r="XFD100000"/></row>', "A1:XFD100000")
    folder = tmp_path / "landing" / INVOICES.folder
    folder.mkdir(parents=True)
    path = folder / "invoices_2026-11.xlsx"
    path.write_bytes(bomb)
    started = time.perf_counter()
    res = ingest_file(path, INVOICES, tmp_path / "data", new_load_id(), display_path=path.name)
    took = time.perf_counter() - started
    print(f"\nXLSX of {len(bomb)} bytes declaring A1:XFD100000: ingested in {took:.3f} s")
    assert (res.rows_read, res.rows_loaded, res.rows_quarantined) == (2, 2, 0)
    again = ingest_file(path, INVOICES, tmp_path / "data", new_load_id(), display_path=path.name)
    assert again.status == "duplicate"  # not parsed on the next run


def test_xlsx_over_the_row_cap_fails_clearly_and_is_not_parsed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRMWH_INGEST__XLSX_MAX_ROWS", "1000")
    capped = IngestOptions.from_settings(load_settings())  # settings.yml / CRMWH_INGEST__*
    assert capped.xlsx_max_rows == 1000
    rows = (
        invoice_rows(2) + '<row r="100000"><c r="A100000" t="inlineStr"><is><t>x</t></is></c></row>'
    )
    bomb = xlsx_bytes(rows, "A1:XFD100000")
    folder = tmp_path / "landing" / INVOICES.folder
    folder.mkdir(parents=True)
    path = folder / "invoices_2026-11.xlsx"
    path.write_bytes(bomb)
    data = tmp_path / "data"
    started = time.perf_counter()
    err = ingest_or_record(path, INVOICES, data, path.name, capped)
    print(f"\nXLSX of {len(bomb)} bytes with data at row 100000: refused in "
          f"{time.perf_counter() - started:.3f} s")  # fmt: skip
    assert isinstance(err, IngestError)
    assert str(err) == (
        f"{path}: sheet 'Счета' has data beyond row 1000 (ingest.xlsx_max_rows in "
        "settings.yml); split the export"
    )
    assert len(list((data / "failed").glob("*.json"))) == 1
    again = ingest_or_record(path, INVOICES, data, path.name, capped)
    assert again.status == "failed" and "beyond row 1000" in again.warnings[0]

    wide = xlsx_bytes(invoice_rows(1).replace("</row>", _cell("XFD1", "x") + "</row>", 1))
    path2 = folder / "invoices_2026-10.xlsx"
    path2.write_bytes(wide)
    with pytest.raises(IngestError, match="header 16384 columns wide, more than 500"):
        ingest_file(path2, INVOICES, data, new_load_id(), options=capped)


# --------------------------------------------------------------------------- volume


def test_cadence_of_a_file_from_its_export_dates() -> None:
    assert [cadence(a, b) for a, b in [
        ("2026-11-20", "2026-11-20"), ("2026-11-16", "2026-11-22"), ("2026-02-01", "2026-02-28"),
        ("2026-10-01", "2026-12-31"), ("2026-01-01", "2026-12-31"), ("2026-11-01", "2026-11-10"),
        (None, None),
    ]] == ["daily", "weekly", "monthly", "quarterly", "yearly", "10-day", ""]  # fmt: skip


def volume_outcomes(data: Path) -> dict[str, object]:
    con = raw_connection(data, ENTITY_LIST)
    try:
        _, outcomes = run_suite(con, suite_of("bitrix__deal_snapshot"), engine="sql")
    finally:
        con.close()
    got = outcomes_by_name(outcomes)
    return {k: got[k] for k in ("volume", "volume__block")}


def test_volume_compares_daily_files_with_daily_files(tmp_path: Path) -> None:
    # monthly registers of 600 rows, then the first daily file of 20 rows: not a collapse
    for month in ("07", "08", "09", "10"):
        land_deals(tmp_path, f"deals_2026-{month}.csv", 600)
    land_deals(tmp_path, "deals_2026-11-20.csv", 20)
    got = volume_outcomes(tmp_path / "data")
    assert got["volume__block"].passed and got["volume"].passed
    assert "0 earlier daily file(s): not judged" in got["volume__block"].details

    for day in (21, 22, 23):
        land_deals(tmp_path, f"deals_2026-11-{day}.csv", 20)
    got = volume_outcomes(tmp_path / "data")
    assert "median 20 rows/file x 1 file(s) (daily)" in got["volume"].details
    assert got["volume__block"].passed and got["volume"].passed

    # a monthly register is judged against the monthly ones, not the daily lists
    land_deals(tmp_path, "deals_2026-11.csv", 580)
    got = volume_outcomes(tmp_path / "data")
    assert "median 600 rows/file x 1 file(s) (monthly)" in got["volume"].details
    assert got["volume"].passed

    land_deals(tmp_path, "deals_2026-11-24.csv", 1)  # a cut-off daily file still blocks
    got = volume_outcomes(tmp_path / "data")
    assert not got["volume__block"].passed and got["volume__block"].observed == 1


def test_removing_or_replacing_the_offending_file_clears_the_volume_block(
    landing_env: Path,
) -> None:
    from pipelines.defs.ingest import withdraw_blocked_files

    tmp = landing_env
    data = tmp / "data"
    for day in (16, 17, 18, 19):
        land_deals(tmp, f"deals_2026-11-{day}.csv", 40)
    assert withdraw_blocked_files(load_settings(), DEALS) == []  # a passing load is never withdrawn
    cut = land_deals(tmp, "deals_2026-11-20.csv", 3)
    assert not volume_outcomes(data)["volume__block"].passed
    assert withdraw_blocked_files(load_settings(), DEALS) == []  # still landed: the block stands
    assert not volume_outcomes(data)["volume__block"].passed

    cut.unlink()  # the operator removes the offending file
    assert withdraw_blocked_files(load_settings(), DEALS) == [
        f"{DEALS.folder}/deals_2026-11-20.csv: withdrawn from the raw layer: its load failed "
        "the blocking volume floor (3 rows, at least 4 expected: median 40 rows/file x 1 "
        "file(s) (daily)) and the file is no longer in the landing folder"
    ]
    got = volume_outcomes(data)
    assert got["volume__block"].passed
    con = raw_connection(data, ENTITY_LIST)
    assert (
        con.execute(
            "select count(*) from raw.bitrix__deal_snapshot where _source_file like '%11-20.csv'"
        ).fetchone()[0]
        == 0
    )
    con.close()

    # the same name again with 3 rows blocks; replaced by a full export, it clears
    cut = land_deals(tmp, "deals_2026-11-21.csv", 3)
    assert not volume_outcomes(data)["volume__block"].passed
    cut.write_bytes(deals_text([bx_deal(i, tag="r") for i in range(40)]))
    assert len(withdraw_blocked_files(load_settings(), DEALS)) == 1
    ingest_file(cut, DEALS, data, new_load_id(), display_path=f"{DEALS.folder}/{cut.name}")
    got = volume_outcomes(data)
    assert got["volume__block"].passed and got["volume"].observed == 40
    # and a file that passed may leave the landing folder (rotation) without being withdrawn
    cut.unlink()
    assert withdraw_blocked_files(load_settings(), DEALS) == []


# --------------------------------------------------------------------------- Dagster assets


def test_ingest_assets_refuse_links_and_withdraw_a_blocked_file(landing_env: Path) -> None:
    """The same behaviours through the Dagster assets a run materialises."""
    from dagster import DagsterInstance, materialize

    from pipelines.defs.ingest import (
        build_ingest_asset,
        build_landing_inventory,
        export_date_partitions,
    )

    tmp = landing_env
    for day in (16, 17, 18, 19):
        land_deals(tmp, f"deals_2026-11-{day}.csv", 40)
    cut = land_deals(tmp, "deals_2026-11-20.csv", 3)
    secret = tmp / "passwd"
    secret.write_text(SECRET + "\n")
    (tmp / "landing" / DEALS.folder / "deals_2026-11-21.csv").symlink_to(secret)
    (tmp / "landing" / DEALS.folder / "deals_2026-11-22.csv").write_bytes(b"")
    cut.unlink()

    settings = load_settings()
    asset = build_ingest_asset(settings, DEALS, export_date_partitions(settings))
    landing_inventory = build_landing_inventory(settings, ENTITY_LIST)
    with DagsterInstance.ephemeral() as instance:
        result = materialize([asset], partition_key="2026-11-22", instance=instance)
        assert result.success
        meta = result.asset_materializations_for_node(asset.op.name)[0].metadata
        assert (meta["files_withdrawn"].value, meta["files_empty"].value) == (1, 1)
        assert meta["files_in_range"].value == 1  # the empty file; the link is not a file
        inventory = materialize([landing_inventory], instance=instance)
        meta = inventory.asset_materializations_for_node("raw__landing_inventory")[0].metadata
        assert meta["refused_entries"].value == 1
    assert volume_outcomes(tmp / "data")["volume__block"].passed
    assert "secret-marker" not in everything_written(tmp / "data")
