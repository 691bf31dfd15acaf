"""The command line as users call it: simulate, forecast from a CSV, alerts list."""

import json

import pandas as pd
from typer.testing import CliRunner

from shelfwatch.cli.app import app

runner = CliRunner()


def test_simulate_writes_a_world(tmp_path):
    result = runner.invoke(
        app,
        ["simulate", "--out", str(tmp_path / "w"), "--stores", "1", "--skus", "3", "--days", "60", "--members", "10"],
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "w" / "sales" / "sales_daily.csv")) == 3 * 60
    behaving = runner.invoke(
        app,
        [
            "simulate",
            "--out",
            str(tmp_path / "b"),
            "--stores",
            "4",
            "--skus",
            "20",
            "--days",
            "200",
            "--members",
            "300",
            "--chains",
            "2",
            "--member-behaviour",
        ],
    )
    assert behaving.exit_code == 0, behaving.output
    stores = pd.read_csv(tmp_path / "b" / "stores.csv")
    assert stores["chain"].nunique() == 2 and stores[["latitude", "longitude"]].notna().all().all()
    assert json.loads((tmp_path / "b" / "member_truth.json").read_text())["member_behaviour"] is True


def test_forecast_csv_contract(tmp_path):
    dates = pd.date_range("2026-06-01", periods=70)
    sales = pd.concat(
        [
            pd.DataFrame(
                {"store_id": "S1", "sku": "A", "date": dates.strftime("%Y-%m-%d"), "units": [3, 4, 5, 2, 6, 9, 8] * 10}
            ),
            pd.DataFrame({"store_id": "S1", "sku": "B", "date": dates[:40].strftime("%Y-%m-%d"), "units": 1}),
        ]
    )
    sales.to_csv(tmp_path / "sales.csv", index=False)
    result = runner.invoke(
        app,
        ["forecast", "--input", str(tmp_path / "sales.csv"), "--horizon", "7", "--output", str(tmp_path / "fc.csv")],
    )
    assert result.exit_code == 0, result.output
    fc = pd.read_csv(tmp_path / "fc.csv")
    assert list(fc.columns) == ["store_id", "sku", "date", "mean", "p10", "p50", "p90", "model"]
    assert len(fc) == 14
    # every series starts the day after its own last date
    assert fc.groupby("sku")["date"].min().to_dict() == {"A": "2026-08-10", "B": "2026-07-11"}
    assert (fc["p10"] <= fc["p50"]).all() and (fc["p50"] <= fc["p90"]).all() and (fc["mean"] >= 0).all()


def test_forecast_reads_planned_prices_and_refuses_a_bad_price_file_by_line(tmp_path):
    dates = pd.date_range("2026-06-01", periods=70)
    pd.DataFrame(
        {"store_id": "S1", "sku": "A", "date": dates.strftime("%Y-%m-%d"), "units": [3, 4, 5, 2, 6, 9, 8] * 10}
    ).to_csv(tmp_path / "sales.csv", index=False)
    (tmp_path / "prices.csv").write_text("store_id,sku,date,price\n,A,2026-06-01,2.50\nS1,A,2026-08-12,1.99\n")
    ok = runner.invoke(
        app,
        [
            "forecast",
            "--input",
            str(tmp_path / "sales.csv"),
            "--prices",
            str(tmp_path / "prices.csv"),
            "--horizon",
            "7",
            "--output",
            str(tmp_path / "fc.csv"),
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert len(pd.read_csv(tmp_path / "fc.csv")) == 7
    (tmp_path / "bad.csv").write_text(
        "store_id,sku,date,price\n,A,2026-06-01,2.50\n,A,01/08/2026,1.99\n,A,2026-08-12,0\n"
    )
    bad = runner.invoke(
        app,
        [
            "forecast",
            "--input",
            str(tmp_path / "sales.csv"),
            "--prices",
            str(tmp_path / "bad.csv"),
            "--output",
            str(tmp_path / "x.csv"),
        ],
    )
    assert bad.exit_code == 2
    message = " ".join(bad.output.split())
    assert "bad.csv" in message and "lines 3, 4" in message and "price above 0" in message
    assert not (tmp_path / "x.csv").exists()


def test_forecast_rejects_missing_columns(tmp_path):
    pd.DataFrame({"store_id": ["S1"], "sku": ["A"], "day": ["2026-01-01"], "qty": [1]}).to_csv(
        tmp_path / "bad.csv", index=False
    )
    result = runner.invoke(
        app, ["forecast", "--input", str(tmp_path / "bad.csv"), "--output", str(tmp_path / "fc.csv")]
    )
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "unknown column(s) 'day', 'qty'" in message and "missing column(s) 'date', 'units'" in message
    assert "bad.csv" in message


def test_forecast_cli_writes_models_plots_report_and_names_rejected_series(tmp_path):
    dates = pd.date_range("2026-03-02", periods=120)
    rows = [
        pd.DataFrame({"store_id": "S1", "sku": sku, "date": dates.strftime("%Y-%m-%d"), "units": units, "stockout": 0})
        for sku, units in (("A", [3, 4, 5, 2, 6, 9, 8] * 17 + [3]), ("B", [0, 0, 1, 0, 0, 0, 2] * 17 + [0]))
    ]
    rows.append(pd.DataFrame({"store_id": "S2", "sku": "NEW", "date": ["2026-06-29"], "units": [5], "stockout": [0]}))
    pd.concat(rows).to_csv(tmp_path / "sales.csv", index=False)
    pd.DataFrame({"sku": ["A", "B"], "category": ["dairy", "snacks"]}).to_csv(tmp_path / "products.csv", index=False)
    result = runner.invoke(
        app,
        [
            "forecast",
            "--input",
            str(tmp_path / "sales.csv"),
            "--horizon",
            "28",
            "--output",
            str(tmp_path / "fc.csv"),
            "--quantiles",
            "0.1,0.5,0.9",
            "--models-out",
            str(tmp_path / "models.csv"),
            "--plots",
            str(tmp_path / "plots"),
            "--report",
            str(tmp_path / "report.csv"),
            "--products",
            str(tmp_path / "products.csv"),
        ],
    )
    assert result.exit_code == 3, result.output
    message = " ".join(result.output.split())
    assert "store S2 sku NEW: a single day of history" in message
    fc = pd.read_csv(tmp_path / "fc.csv")
    assert len(fc) == 2 * 28 and set(fc["sku"]) == {"A", "B"}
    models = pd.read_csv(tmp_path / "models.csv").set_index("sku")
    assert models.loc["B", "demand_class"] in {"intermittent", "lumpy"} and models.loc["A", "demand_class"] == "smooth"
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["S1_A.png", "S1_B.png"]
    assert (tmp_path / "plots" / "S1_A.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = pd.read_csv(tmp_path / "report.csv")
    assert set(report["category"]) == {"dairy", "snacks"} and report["series"].sum() == 2
