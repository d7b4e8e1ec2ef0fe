"""The checked-plan memo: an unchanged pipe is not checked again; any change, doubt or damage
means it is checked as before, and the plan is always the one a fresh check gives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlpipe.cli.commands import home_settings
from mlpipe.core.errors import SpecError
from mlpipe.home import loader, plan_memo

PIPE = "toy/pipe/chain.yaml"


def load(overrides=None, grid=None):  # noqa: ANN001, ANN201
    plan, _apps = loader.load_plan(home_settings(), PIPE, overrides, None, grid)
    return plan


def memo_files(env) -> list[Path]:  # noqa: ANN001 - conftest's Env
    folder = env.home / "state" / "plans"
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The pipes really checked (not taken from the memo)."""
    seen: list[str] = []
    real = loader.check_spec

    def counting(settings, apps, pipe, *args, **kwargs):  # noqa: ANN001, ANN202
        seen.append(pipe.pipe_id)
        return real(settings, apps, pipe, *args, **kwargs)

    monkeypatch.setattr(loader, "check_spec", counting)
    return seen


def test_an_unchanged_pipe_is_checked_once(toy: Path, env, checks: list[str]) -> None:  # noqa: ANN001
    first = load()
    second = load()
    assert checks == [PIPE]
    assert second == first and second is not first
    [kept] = memo_files(env)
    assert kept.stat().st_mode & 0o077 == 0  # only its owner reads or writes it


def test_an_edited_pipe_or_module_is_checked_again(toy: Path, checks: list[str]) -> None:
    load()
    chain = toy / "pipe" / "chain.yaml"
    chain.write_text(chain.read_text().replace("parameters: {name: c}", "parameters: {name: c, tag: new}"))
    assert load().jobs["c"].params["tag"] == "new"
    module = toy / "module" / "step.yaml"
    module.write_text(module.read_text().replace('tag: {type: str, default: ""}', 'tag: {type: str, default: "d"}'))
    assert load().jobs["a"].params["tag"] == "d"
    assert checks == [PIPE] * 3


def test_set_grid_and_max_jobs_are_part_of_the_key(toy: Path, checks: list[str], monkeypatch) -> None:  # noqa: ANN001
    assert load({"b": {"tag": "x"}}).jobs["b"].params["tag"] == "x"
    assert load().jobs["b"].params["tag"] == ""
    swept = load(grid={"b": {"tag": ["p", "q"]}})
    members = [job for job in swept.jobs.values() if job.sweep and job.name.startswith("b")]
    assert sorted(job.params["tag"] for job in members) == ["p", "q"]
    monkeypatch.setenv("MLPIPE_MAX_JOBS", "3")
    with pytest.raises(SpecError, match="MAX_JOBS"):
        load(grid={"b": {"tag": ["p", "q"]}})
    assert len(checks) == 4


def test_a_pipe_with_problems_is_not_kept(toy: Path, env) -> None:  # noqa: ANN001
    (toy / "pipe" / "chain.yaml").write_text("jobs:\n  a: {module: toy/module/nope}\n")
    with pytest.raises(SpecError):
        load()
    assert memo_files(env) == []


def test_a_memo_others_may_write_is_not_loaded(toy: Path, env, checks: list[str]) -> None:  # noqa: ANN001
    load()
    [kept] = memo_files(env)
    os.chmod(kept, 0o666)
    load()
    assert checks == [PIPE, PIPE]


@pytest.mark.parametrize("damage", [b"", b"not a pickle", None])
def test_a_damaged_memo_is_a_miss_and_is_replaced(toy: Path, env, checks: list[str], damage) -> None:  # noqa: ANN001
    first = load()
    [kept] = memo_files(env)
    kept.write_bytes(kept.read_bytes()[:-100] if damage is None else damage)
    assert load() == first
    assert load() == first
    assert checks == [PIPE, PIPE]


def test_a_changed_checking_code_stamp_is_a_miss(toy: Path, checks: list[str], monkeypatch) -> None:  # noqa: ANN001
    load()
    monkeypatch.setattr(plan_memo, "_code_stamp", lambda: ("another version",))
    load()
    assert checks == [PIPE, PIPE]


def test_a_pipe_with_includes_is_always_checked(toy: Path, env, checks: list[str]) -> None:  # noqa: ANN001
    chain = toy / "pipe" / "chain.yaml"
    body = chain.read_text()
    (toy / "pipe" / "tail.yaml").write_text("jobs:\n" + body.split("  c:\n")[1].join(["  c:\n", ""]))
    chain.write_text("includes: [toy/pipe/tail]\n" + body.split("  c:\n")[0])
    assert sorted(load().jobs) == ["a", "b", "c"]
    assert sorted(load().jobs) == ["a", "b", "c"]
    assert checks == [PIPE, PIPE]
    assert memo_files(env) == []


def test_a_memo_that_cannot_be_written_only_costs_checking(toy: Path, env, checks: list[str]) -> None:  # noqa: ANN001
    folder = env.home / "state" / "plans"
    folder.parent.mkdir(parents=True)
    folder.write_text("in the way")  # fails for root too, unlike a read-only folder
    assert load() == load()
    assert checks == [PIPE, PIPE]
