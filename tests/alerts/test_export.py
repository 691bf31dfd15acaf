"""The CX export on both databases: the CSV is in place (written whole, renamed into place) before any
contact is recorded, so a failed export never counts toward the 7-day contact cap; each member's row
carries the substitutes to offer meanwhile, read at export time."""

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from alerts import lifecycle, notify
from alerts.notify import NotifyError, export_members_csv, members_for_alert, record_member_contacts, write_csv_atomic
from shelfwatch.cli.app import app
from sql import schema
from tests.alerts.test_lifecycle import candidate
from tests.alerts.test_notify import NOW, open_alert_with_members

runner = CliRunner()


def contacts(engine) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(schema.member_contacts.c.member_id, schema.member_contacts.c.alert_id)).all())


def db_args(engine) -> list[str]:
    return ["--db", engine.url.render_as_string(hide_password=False)]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_cli_export_into_a_missing_folder_records_nothing(engine, small_world, tmp_path):  # noqa: F811
    alert_id, _, _ = open_alert_with_members(engine, small_world)
    target = tmp_path / "not-there" / "cx.csv"
    result = runner.invoke(
        app, ["members", "export", "--alert", str(alert_id), "--output", str(target), *db_args(engine)]
    )
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert (
        f"could not write {target}: folder {target.parent} does not exist; nothing exported, no contact recorded"
        in message
    )
    assert "Traceback" not in result.output and not target.parent.exists()
    assert contacts(engine) == []  # the cap is untouched: CX got nothing
    # the same export into a folder that exists: the file, then the contacts
    target.parent.mkdir()
    done = runner.invoke(
        app, ["members", "export", "--alert", str(alert_id), "--output", str(target), *db_args(engine)]
    )
    assert done.exit_code == 0, done.output
    assert pd.read_csv(target)["member_id"].tolist() == ["M1", "M4"]
    assert contacts(engine) == [("M1", alert_id), ("M4", alert_id)]
    assert leftovers(target.parent) == []


def test_cli_export_to_a_folder_path_is_refused(engine, small_world, tmp_path):  # noqa: F811
    alert_id, _, _ = open_alert_with_members(engine, small_world)
    result = runner.invoke(
        app, ["members", "export", "--alert", str(alert_id), "--output", str(tmp_path), *db_args(engine)]
    )
    assert result.exit_code == 2 and "is a folder" in result.output
    assert contacts(engine) == []


def test_cli_export_to_stdout_prints_then_records(engine, small_world):  # noqa: F811
    alert_id, _, _ = open_alert_with_members(engine, small_world)
    result = runner.invoke(app, ["members", "export", "--alert", str(alert_id), *db_args(engine)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == ",".join(notify.MEMBER_EXPORT_COLUMNS) and [line.split(",")[4] for line in lines[1:]] == [
        "M1",
        "M4",
    ]
    assert contacts(engine) == [("M1", alert_id), ("M4", alert_id)]
    assert runner.invoke(app, ["members", "export", "--alert", "999999", *db_args(engine)]).exit_code == 2


def test_a_failed_write_records_nothing_and_leaves_no_file(engine, small_world, tmp_path, monkeypatch):  # noqa: F811
    alert_id, _, _ = open_alert_with_members(engine, small_world)
    target = tmp_path / "cx.csv"
    target.write_text("yesterday's export\n")

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(notify.os, "replace", full_disk)
    with pytest.raises(NotifyError, match="No space left on device; nothing exported, no contact recorded"):
        export_members_csv(engine, alert_id, NOW, 7, target)
    assert contacts(engine) == [] and leftovers(tmp_path) == []
    assert target.read_text() == "yesterday's export\n"  # the old file is untouched, never half-written


def test_a_failed_recording_removes_the_file(engine, small_world, tmp_path, monkeypatch):  # noqa: F811
    alert_id, _, _ = open_alert_with_members(engine, small_world)
    target = tmp_path / "cx.csv"
    seen = []

    def record_fails(engine_, alert, member_ids, now):
        seen.append(target.exists())  # recording starts only once the file is in place
        raise RuntimeError("database went away")

    monkeypatch.setattr(notify, "record_member_contacts", record_fails)
    with pytest.raises(RuntimeError, match="database went away"):
        export_members_csv(engine, alert_id, NOW, 7, target)
    assert seen == [True] and not target.exists() and contacts(engine) == []


def test_recording_is_separate_and_idempotent(engine, small_world, tmp_path):  # noqa: F811
    alert_id, _, _ = open_alert_with_members(engine, small_world)
    looked = members_for_alert(engine, alert_id, NOW, cap_days=7, record=False)
    assert looked["member_id"].tolist() == ["M1", "M4"] and contacts(engine) == []
    frame = export_members_csv(engine, alert_id, NOW, 7, tmp_path / "cx.csv")
    assert frame.equals(looked) and pd.read_csv(tmp_path / "cx.csv")["member_id"].tolist() == ["M1", "M4"]
    assert (
        record_member_contacts(engine, alert_id, ["M1", "M4"], NOW + timedelta(days=1)) == 0
    )  # already recorded: kept as it was
    with engine.connect() as conn:
        first = conn.execute(select(func.min(schema.member_contacts.c.at))).scalar()
    first = pd.Timestamp(first)
    assert (first.tz_convert(None) if first.tzinfo else first) == NOW.replace(tzinfo=None)
    # a re-export of the same alert gives the same list (the recorded members are its own)
    assert export_members_csv(engine, alert_id, NOW + timedelta(hours=1), 7, tmp_path / "cx.csv").equals(looked)


def test_write_csv_atomic_replaces_whole_files(tmp_path):
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "[y]"]})
    path = write_csv_atomic(frame, tmp_path / "out.csv")
    assert pd.read_csv(path).equals(frame)
    write_csv_atomic(frame.head(1), path)
    assert pd.read_csv(path).equals(frame.head(1)) and leftovers(tmp_path) == []
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_csv_atomic(frame, tmp_path / "missing" / "out.csv")


def give_substitutes(engine, alert_id: int) -> dict[str, str]:
    """Substitutes for M1 (three), M2 (opted out: never exported) and M4 (one); returns sku -> product name."""
    with engine.begin() as conn:
        skus = (
            conn.execute(select(schema.products.c.sku).order_by(schema.products.c.sku).offset(1).limit(3))
            .scalars()
            .all()
        )
        rows = [("M1", 1, skus[0]), ("M1", 2, skus[1]), ("M1", 3, skus[2]), ("M2", 1, skus[0]), ("M4", 1, skus[1])]
        conn.execute(
            schema.alert_substitutes.insert(),
            [
                {"alert_id": alert_id, "member_id": m, "rank": r, "sku": sku, "score": 0.5, "reason": "same category"}
                for m, r, sku in rows
            ],
        )
        return dict(
            conn.execute(
                select(schema.products.c.sku, schema.products.c.name).where(schema.products.c.sku.in_(skus))
            ).all()
        )


def test_export_offers_substitutes_without_alerts_of_their_own_now(engine, small_world, tmp_path):  # noqa: F811
    alert_id, store, favourite = open_alert_with_members(engine, small_world)
    names = give_substitutes(engine, alert_id)
    s1, s2, s3 = sorted(names)
    label = {sku: f"{name} ({sku})" for sku, name in names.items()}
    frame = export_members_csv(engine, alert_id, NOW, 7, tmp_path / "cx.csv")
    written = pd.read_csv(tmp_path / "cx.csv", keep_default_na=False)
    assert list(written.columns) == notify.MEMBER_EXPORT_COLUMNS and written.equals(frame)
    by_member = written.set_index("member_id")[notify.SUBSTITUTE_SLOTS]
    assert by_member.loc["M1"].tolist() == [label[s1], label[s2], label[s3]]
    assert by_member.loc["M4"].tolist() == [label[s2], "", ""]
    assert "M2" not in by_member.index  # opted out: no substitutes either

    # the second substitute runs out too (an alert of its own at this store): left out, the third moves up
    from alerts.detect import persist_alerts

    persist_alerts(
        engine,
        pd.DataFrame(
            [
                candidate(store=store, sku=favourite),
                candidate(store=store, sku=s2, alert_type="shelf_empty", probability=1.0),
            ]
        ),
        pd.DataFrame(columns=["store_id", "sku", "member_id", "score"]),
        pd.Timestamp(NOW),
    )
    later = members_for_alert(engine, alert_id, NOW, cap_days=7, record=False).set_index("member_id")[
        notify.SUBSTITUTE_SLOTS
    ]
    assert later.loc["M1"].tolist() == [label[s1], label[s3], ""] and later.loc["M4"].tolist() == ["", "", ""]
    # the shelf is refilled: it may be offered again
    with engine.connect() as conn:
        other = conn.execute(select(schema.alerts.c.alert_id).where(schema.alerts.c.sku == s2)).scalar()
    lifecycle.resolve(engine, other, "manager", at=NOW)
    again = members_for_alert(engine, alert_id, NOW, cap_days=7, record=False).set_index("member_id")[
        notify.SUBSTITUTE_SLOTS
    ]
    assert again.loc["M1"].tolist() == [label[s1], label[s2], label[s3]]
    with engine.connect() as conn:
        assert (
            conn.execute(select(schema.alerts.c.status).where(schema.alerts.c.alert_id == alert_id)).scalar() == "open"
        )


def test_export_without_substitutes_has_empty_columns(engine, small_world):  # noqa: F811
    alert_id, _, _ = open_alert_with_members(engine, small_world)
    frame = members_for_alert(engine, alert_id, NOW, cap_days=7, record=False)
    assert list(frame.columns) == notify.MEMBER_EXPORT_COLUMNS and (frame[notify.SUBSTITUTE_SLOTS] == "").all().all()
