"""Maintaining pipes in a real browser (Playwright + Debian's Chromium, skipped with one reason
when missing): run and cancel from the page, create a pipe in the form and run it with `ml
runpipe`, invalid wiring shown next to its field, two tabs editing one pipe."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import ml_process
from test_ui_browser import CHROMIUM, node_states, open_pipe

from bench.browser import NO_BROWSER

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=NO_BROWSER)
if CHROMIUM is not None:
    from playwright.sync_api import expect

PIPE = "toy/pipe/chain.yaml"


def newest(ml, pipe: str = PIPE) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for row in json.loads(ml("listjob", "--pipe", pipe, "--json").out):
        found.setdefault(row["job"], row)
    return found


def add_set(page, job: str, param: str, value: str) -> None:
    """One `--set JOB.PARAM=VALUE` row, filled through its typed field."""
    page.click("#btn-add-set")
    row = page.locator(".override").last
    row.locator(".set-job").select_option(job)
    row.locator(".set-param").select_option(param)
    row.locator(".set-value").fill(value)


def test_run_from_the_page_executes_the_stale_jobs_and_shows_them_live(page, ui_server, toy: Path, env, ml) -> None:
    open_pipe(page, ui_server, PIPE)
    assert {s[1] for s in node_states(page).values()} == {"stale"}
    page.click("#btn-dry-run")
    expect(page.locator("#dry-run tbody tr")).to_have_count(3)
    assert page.locator("#dry-run tbody tr").first.inner_text().split("\t") == ["a", "stale", "run", "never run"]
    assert env.executed() == []  # a dry run executes nothing
    page.fill("#run-jobs", "2")
    page.click("#btn-run")
    expect(page.locator("#action-state")).to_have_attribute("data-state", "succeeded", timeout=30_000)
    expect(page.locator("#action-state")).to_have_text("succeeded")
    assert page.text_content("#action-status code") == "ml runpipe toy/pipe/chain.yaml --no-wait -j 2"
    expect(page.locator("#dag .node[data-state=up-to-date]")).to_have_count(3, timeout=15_000)  # no reload
    assert env.executed() == ["a", "b", "c"]
    assert {r["status"] for r in newest(ml).values()} == {"succeeded"}
    # --set from a typed field: c runs again with the value as one literal argument
    add_set(page, "c", "tag", "; touch X")
    page.click("#btn-run")
    expect(page.locator("#action-status code")).to_have_text("ml runpipe toy/pipe/chain.yaml --no-wait -j 2"
                                                            " --set c.tag=; touch X")
    expect(page.locator("#action-state")).to_have_attribute("data-state", "succeeded", timeout=30_000)
    assert env.executed() == ["a", "b", "c", "c"]
    record = newest(ml)["c"]
    assert record["status"] == "succeeded"
    assert Path(record["outputs"]["output"]).read_text().endswith("c ; touch X\n")
    assert list(env.home.parent.rglob("X")) == []
    assert {s[1] for s in node_states(page).values()} == {"up-to-date"}  # as written (tag ""), c is cached


def test_cancel_from_the_page_stops_a_sleeping_job(page, ui_server, toy: Path, env, ml) -> None:
    open_pipe(page, ui_server, PIPE)
    add_set(page, "b", "sleep", "60")
    page.click("#btn-run")
    page.wait_for_selector("#dag .node[data-id=b][data-state=running]", timeout=30_000)
    began = time.monotonic()
    page.click("#btn-cancel")
    expect(page.locator("#cancel-result")).to_have_text("canceled: b canceled", timeout=30_000)
    expect(page.locator("#action-state")).to_have_attribute("data-state", "failed", timeout=20_000)
    assert time.monotonic() - began < 30
    assert {j: r["status"] for j, r in newest(ml).items()} == {"a": "succeeded", "b": "canceled"}
    assert env.executed() == ["a", "b"]


def test_a_second_run_is_refused_with_the_page_saying_so(page, ui_server, toy: Path, ml) -> None:
    open_pipe(page, ui_server, PIPE)
    add_set(page, "a", "sleep", "3")
    page.click("#btn-run")
    page.wait_for_selector("#dag .node[data-id=a][data-state=running]", timeout=30_000)
    page.click("#btn-run")
    expect(page.locator("#action-error")).to_contain_text("toy/pipe/chain.yaml is already running")
    expect(page.locator("#action-state")).to_have_attribute("data-state", "succeeded", timeout=30_000)
    expect(page.locator("#action-error")).to_contain_text("already running")  # still said
    assert {r["status"] for r in newest(ml).values()} == {"succeeded"}


def test_rerun_and_force_one_job_from_its_panel(page, ui_server, toy: Path, env, ml) -> None:
    assert ml("runpipe", PIPE).code == 0
    env.reset_log()
    open_pipe(page, ui_server, PIPE)
    page.click("#dag .node[data-id=b]")
    page.click("#btn-rerun")
    expect(page.locator("#job-action-state")).to_have_attribute("data-state", "succeeded", timeout=30_000)
    assert page.text_content("#job-action code") == f"ml runjob {newest(ml)['b']['job_id']}"
    assert env.executed() == []  # its outputs are cached: a rerun runs nothing, as `ml runjob` says
    page.click("#btn-force")
    expect(page.locator("#job-action code")).to_have_text(f"ml runjob {newest(ml)['b']['job_id']} --force")
    expect(page.locator("#job-action-state")).to_have_attribute("data-state", "succeeded", timeout=30_000)
    assert env.executed() == ["b"]


def fill_job(page, index: int, *, uri: str | None = None, data: str | None = None, output: str = "",
             name: str = "") -> None:
    job = page.locator("fieldset.job").nth(index)
    if uri is not None:
        job.locator(".input-pick").select_option(":uri")
        job.locator(".input-uri").fill(uri)
    if data is not None:
        job.locator(".input-pick").select_option(data)
    output_field = job.locator(".output-name")
    output_field.fill(output)
    output_field.dispatch_event("change")
    if name:
        page.locator("fieldset.job").nth(index).locator("[data-param=name]").fill(name)


def test_create_a_pipe_in_the_form_save_and_run_it(page, ui_server, toy: Path, env) -> None:
    page.goto(f"{ui_server.base}/#/new")
    page.fill("#pipe-name", "made")
    page.click("#btn-add-job")
    expect(page.locator("fieldset.job .interface")).to_contain_text("inputs inputs: text (optional)")
    fill_job(page, 0, uri="file://toy/data/seed.txt", output="first_out", name="first")
    page.click("#btn-add-job")
    fill_job(page, 1, data="first_out", output="second_out", name="second")
    page.locator("fieldset.job").nth(1).locator(".sweep[placeholder]").first.fill("one, two")  # sweep name
    expect(page.locator("#preview svg .node")).to_have_count(2)
    expect(page.locator("#preview svg path")).to_have_count(1)  # first -> second, drawn as it was wired
    page.click("#btn-validate")
    expect(page.locator("#valid")).to_be_visible()
    page.click("#btn-save")
    expect(page.locator("#saved")).to_contain_text("saved toy/pipe/made.yaml")
    run = ml_process("runpipe", "toy/pipe/made.yaml")
    assert run.returncode == 0, run.stderr
    assert sorted(env.executed()) == ["first", "one", "two"]


def test_invalid_wiring_shows_the_error_next_to_its_field_and_writes_nothing(page, ui_server, toy: Path) -> None:
    page.goto(f"{ui_server.base}/#/new")
    page.fill("#pipe-name", "broken")
    page.click("#btn-add-job")
    fill_job(page, 0, uri="file://toy/data/missing.txt", output="dup")
    page.click("#btn-add-job")
    fill_job(page, 1, data="dup", output="dup")
    page.click("#btn-save")
    expect(page.locator("#save-error")).to_contain_text("data name 'dup' is already an output of job 'job1'")
    first, second = page.locator("fieldset.job").nth(0), page.locator("fieldset.job").nth(1)
    expect(first.locator(".field-error[data-for='job1|input.inputs']")).to_contain_text(
        "file://toy/data/missing.txt: no such file or folder in app 'toy'")
    expect(second.locator(".field-error[data-for='job2|output.output']")).to_contain_text("already an output")
    expect(second.locator(".output-name")).to_have_class("output-name invalid")
    assert sorted(p.name for p in (toy / "pipe").iterdir()) == ["chain.yaml"]
    page.fill("#pipe-name", "../escape")
    page.click("#btn-validate")
    expect(page.locator(".field-error[data-for='|pipe']")).to_contain_text("a pipe is saved as APP/pipe/NAME.yaml")
    assert sorted(p.name for p in (toy / "pipe").iterdir()) == ["chain.yaml"]


def test_two_tabs_editing_one_pipe_the_second_save_is_refused(browser, ui_server, toy: Path) -> None:
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    first, second = context.new_page(), context.new_page()
    first.goto(ui_server.url)
    for tab in (first, second):
        tab.goto(f"{ui_server.base}/#/edit/{quote(PIPE, safe='')}")
        tab.wait_for_selector("fieldset.job[data-job=c]")
    first.locator("fieldset.job[data-job=c] [data-param=tag]").fill("from-first")
    first.click("#btn-save")
    expect(first.locator("#saved")).to_be_visible()
    saved = (toy / "pipe" / "chain.yaml").read_text()
    assert "from-first" in saved
    second.locator("fieldset.job[data-job=c] [data-param=tag]").fill("from-second")
    second.click("#btn-save")
    expect(second.locator("#save-error")).to_contain_text("changed on disk since you loaded it")
    assert (toy / "pipe" / "chain.yaml").read_text() == saved  # the first tab's save survives
    expect(second.locator("fieldset.job[data-job=c] [data-param=tag]")).to_have_value("from-second")  # nothing lost
    context.close()


def test_a_slow_answer_for_the_page_left_behind_does_not_draw_over_the_editor(page, ui_server, toy: Path) -> None:
    held = []  # the pipe list's first request, answered only after the editor is on screen

    def hold_the_first(route) -> None:  # noqa: ANN001 - Playwright's Route
        if held:
            route.continue_()
        else:
            held.append(route)

    page.route("**/api/pipes", hold_the_first)
    page.goto(ui_server.url)
    while not held:
        page.wait_for_timeout(50)
    page.goto(f"{ui_server.base}/#/edit/{quote(PIPE, safe='')}")
    page.wait_for_selector("fieldset.job[data-job=c]")
    held[0].continue_()
    page.wait_for_timeout(500)
    expect(page.locator("h1")).to_have_text(f"Edit {PIPE}")
    expect(page.locator("fieldset.job[data-job=c]")).to_be_visible()


def test_the_form_says_before_saving_that_comments_will_go(page, ui_server, toy: Path) -> None:
    path = toy / "pipe" / "chain.yaml"
    path.write_text("# keep me\n" + path.read_text())
    page.goto(f"{ui_server.base}/#/edit/{quote(PIPE, safe='')}")
    page.wait_for_selector("fieldset.job[data-job=c]")
    expect(page.locator("#comment-note")).to_contain_text("1 comment line(s)")
    page.locator("fieldset.job[data-job=c] [data-param=tag]").fill("x")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#btn-save")
    page.wait_for_timeout(300)
    assert path.read_text().startswith("# keep me\n")  # declined: nothing written
    page.click("#tab-yaml")
    expect(page.locator("#yaml-text")).to_have_value(re.compile(r"tag: x"))  # the form's edit, as YAML
    text = page.input_value("#yaml-text")
    page.fill("#yaml-text", "# keep me\n" + text)
    page.click("#btn-save")
    expect(page.locator("#saved")).to_be_visible()
    assert path.read_text().startswith("# keep me\n") and "tag: x" in path.read_text()
