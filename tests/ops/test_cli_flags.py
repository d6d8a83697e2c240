"""The new serve flags are validated before anything starts: usage errors name the flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--web.telemetry-path=metrics"],
            "argument --web.telemetry-path: 'metrics': a path starting with '/', "
            "not one of /, /probe, /sd, /-/healthy, /-/ready, /-/reload",
        ),
        (
            ["--web.telemetry-path=/probe"],
            "argument --web.telemetry-path: '/probe': a path starting with '/', "
            "not one of /, /probe, /sd, /-/healthy, /-/ready, /-/reload",
        ),
        (
            ["--shard=4/4"],
            "argument --shard: --shard: invalid value '4/4': I must be below N "
            "(expected I/N with 0 <= I < N (e.g. 0/3), or auto/N)",
        ),
    ],
)
def test_bad_flag_is_a_usage_error(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"tls-exporter: error: {message}"


def test_missing_web_config_file_fails_the_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "web.yml"
    assert main([f"--web.config.file={missing}", "--web.listen-address=127.0.0.1:1"]) == 1  # fails before it binds
    assert capsys.readouterr().err == f"{missing}: cannot read: No such file or directory\n"
