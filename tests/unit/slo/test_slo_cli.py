from pathlib import Path

from typer.testing import CliRunner

from peakshop.slo.cli import app

EXAMPLES = Path(__file__).parent / "examples"
runner = CliRunner()


def test_validate_accepts_a_good_file_and_names_the_problems_of_a_bad_one(tmp_path):
    assert runner.invoke(app, ["validate", str(EXAMPLES / "latency.yaml")]).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXAMPLES / "latency.yaml").read_text().replace("objective: 99", "objective: 100"))
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1
    assert "slos[0].objective" in result.output


def test_generate_writes_the_rules_tests_and_dashboards(tmp_path):
    result = runner.invoke(app, ["generate", "--out", str(tmp_path), str(EXAMPLES / "latency.yaml")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rules.yaml").exists() and (tmp_path / "rules.test.yaml").exists()
    assert (tmp_path / "dashboards/slos.json").exists()


def test_report_needs_exactly_one_source():
    assert runner.invoke(app, ["report"]).exit_code == 2


def test_every_command_has_help():
    for command in ("validate", "generate", "import-openslo", "export-openslo", "report"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output
