from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = text.split("```sh\n")[1:3]
    return [b.split("\n```")[0].strip() for b in blocks]


def test_readme_opens_with_the_run_and_test_commands():
    run, test = _commands()
    assert "aiguillage up" in run
    assert "pytest" in test


def test_ci_runs_exactly_the_readme_test_command():
    _, test = _commands()
    assert test in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
