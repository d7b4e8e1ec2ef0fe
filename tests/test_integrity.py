"""The cache never lies and every failure is a failure (DESIGN.md, "Integrity"): each test is a
repro of something that went wrong before, run with the real `ml`, real files and processes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest
from conftest import ml_process, results, run_json, write_tree

from mlpipe.store.cache import remove_tree
from mlpipe.store.records import job_ids, read_record

CHAIN = "toy/pipe/chain.yaml"


def dry(ml, pipe: str = CHAIN) -> dict[str, dict]:
    result = ml("runpipe", pipe, "-n", "--json")
    assert result.code == 0, result.err
    return {job["name"]: job for job in json.loads(result.out)["jobs"]}


def output_of(report: dict, job: str) -> Path:
    return Path(next(j for j in report["jobs"] if j["name"] == job)["outputs"]["output"])


def make_writable(path: Path) -> None:
    path.chmod(path.stat().st_mode | stat.S_IWUSR)


# -- 1, 2: a deleted or damaged entry is absent --------------------------------------------------
def test_output_deleted_by_hand_is_missing_and_rebuilt(env, ml, toy):
    first = run_json(ml, CHAIN)
    output_of(first, "b").unlink()  # the sidecar stays
    plan = dry(ml)
    assert plan["b"]["status"] == "stale" and plan["b"]["action"] == "run"
    assert plan["b"]["reasons"] == ["output output missing from the cache"]
    assert plan["a"]["status"] == "up-to-date"
    env.reset_log()
    second = run_json(ml, CHAIN)
    assert results(second) == {"a": "cached", "b": "ran", "c": "cached"}  # byte-identical again: c cut off
    assert env.executed() == ["b"]
    assert output_of(second, "b").read_text() == "seed\na \nb \n"


@pytest.mark.parametrize("damage", ["truncate", "grow"])
def test_output_of_another_size_is_damaged_and_rebuilt(env, ml, toy, damage):
    first = run_json(ml, CHAIN)
    path = output_of(first, "a")
    make_writable(path)
    path.write_text("s" if damage == "truncate" else path.read_text() + "more\n")
    assert dry(ml)["a"]["reasons"] == ["output output damaged in the cache"]
    env.reset_log()
    second = run_json(ml, CHAIN)
    assert results(second)["a"] == "ran" and env.executed() == ["a"]
    assert output_of(second, "a").read_text() == "seed\na \n"


@pytest.mark.parametrize(("damage", "reason"), [("delete the folder", "missing from"),
                                               ("delete a file in it", "damaged in")])
def test_folder_output_that_lost_a_file_is_damaged_and_rebuilt(env, ml, toy, damage, reason):
    write_tree(toy, {
        "module/tree.py": """
            import os, sys
            os.makedirs(sys.argv[1] + "/sub")
            open(sys.argv[1] + "/a.txt", "w").write("a")
            open(sys.argv[1] + "/sub/b.txt", "w").write("b")
            open(os.environ["TOY_LOG"], "a").write("tree\\n")
            """,
        "module/tree.yaml": "output: {out: {type: folder}}\ncmd: python -m toy.module.tree out\n",
        "pipe/tree.yaml": "jobs:\n  t: {module: toy/module/tree, output: {out: t_out}}\n"})
    first = run_json(ml, "toy/pipe/tree.yaml")
    folder = Path(first["jobs"][0]["outputs"]["out"])
    for path in (folder, folder / "sub"):
        make_writable(path)
    if damage == "delete the folder":
        for path in (folder / "sub" / "b.txt", folder / "a.txt"):
            path.unlink()
        (folder / "sub").rmdir()
        folder.rmdir()
    else:
        (folder / "sub" / "b.txt").unlink()
    assert dry(ml, "toy/pipe/tree.yaml")["t"]["reasons"] == [f"output out {reason} the cache"]
    env.reset_log()
    assert results(run_json(ml, "toy/pipe/tree.yaml")) == {"t": "ran"} and env.executed() == ["tree"]
    assert (folder / "sub" / "b.txt").read_text() == "b"


def test_runjob_reruns_a_job_whose_output_was_deleted(env, ml, toy):
    first = run_json(ml, CHAIN)
    job_id = next(j for j in first["jobs"] if j["name"] == "c")["job_id"]
    output_of(first, "c").unlink()
    env.reset_log()
    assert ml("runjob", "--job_id", job_id).code == 0
    assert env.executed() == ["c"]
    assert output_of(first, "c").exists()


def test_torn_sidecar_reads_as_absent(env, ml, toy):
    first = run_json(ml, CHAIN)
    sidecar = output_of(first, "c").with_name(output_of(first, "c").name + ".json")
    sidecar.write_text('{"md5": "ab')  # power loss mid-write
    assert dry(ml)["c"]["status"] == "stale"
    env.reset_log()
    assert results(run_json(ml, CHAIN))["c"] == "ran"
    empty = sidecar
    empty.write_text("")
    assert dry(ml)["c"]["status"] == "stale"


def test_verify_finds_same_size_corruption_and_repair_removes_it(env, ml, toy):
    first = run_json(ml, CHAIN)
    path = output_of(first, "b")
    make_writable(path)
    text = path.read_text()
    path.write_text(text.replace("b", "X"))  # same size, other bytes: only a re-hash sees it
    assert dry(ml)["b"]["status"] == "up-to-date"  # the run-time check is a stat, by design
    found = ml("verify", "--json")
    assert found.code == 1
    report = json.loads(found.out)
    assert report["checked"] == 3 and [d["data_hash"] for d in report["damaged"]] == [path.name]
    assert "content md5" in report["damaged"][0]["problem"]
    assert "ml verify --repair" in found.err
    assert ml("verify", CHAIN, "--repair").code == 0
    assert not path.exists()
    env.reset_log()
    assert results(run_json(ml, CHAIN)) == {"a": "cached", "b": "ran", "c": "cached"}
    assert ml("verify").code == 0


# -- 3: jobs without outputs -------------------------------------------------------------------
NOTIFY = {
    "module/notify.py": """
        import os, sys
        with open(os.environ["TOY_LOG"], "a") as log:
            log.write(sys.argv[1] + "\\n")
        """,
    "module/notify.yaml": """
        input: {report: {type: text}}
        parameters: {name: {type: str, default: notify}}
        cmd: python -m toy.module.notify name report
        """,
}


def test_job_without_outputs_runs_once_per_job_hash(env, ml, toy):
    write_tree(toy, {**NOTIFY, "pipe/upload.yaml": """
        jobs:
          upload: {module: toy/module/notify, input: {report: file://toy/data/seed.txt}, parameters: {name: upload}}
        """})
    plan = dry(ml, "toy/pipe/upload.yaml")
    assert plan["upload"]["status"] == "stale" and plan["upload"]["action"] == "run"
    assert results(run_json(ml, "toy/pipe/upload.yaml")) == {"upload": "ran"}
    assert results(run_json(ml, "toy/pipe/upload.yaml")) == {"upload": "cached"}
    assert env.executed() == ["upload"]
    (toy / "data" / "seed.txt").write_text("new seed\n")
    assert results(run_json(ml, "toy/pipe/upload.yaml")) == {"upload": "ran"}


def test_always_true_runs_on_every_run(env, ml, toy):
    write_tree(toy, {**NOTIFY, "pipe/always.yaml": """
        jobs:
          ping:
            module: toy/module/notify
            input: {report: file://toy/data/seed.txt}
            parameters: {name: ping}
            always: true
          a:
            module: toy/module/step
            output: {output: a_out}
            parameters: {name: a}
        """})
    for _ in range(3):
        run_json(ml, "toy/pipe/always.yaml")
    assert env.executed().count("ping") == 3 and env.executed().count("a") == 1
    assert dry(ml, "toy/pipe/always.yaml")["ping"]["reasons"] == ["always: true"]


def test_always_must_be_a_boolean(env, ml, toy):
    write_tree(toy, {"pipe/bad.yaml": """
        jobs:
          a: {module: toy/module/step, output: {output: a_out}, always: "yes"}
        """})
    result = ml("runpipe", "toy/pipe/bad.yaml")
    assert result.code == 2 and "always" in result.err and "expected true or false" in result.err


# -- 4: symbolic links in outputs ---------------------------------------------------------------
LINKER = {
    "module/linker.py": """
        import os, sys
        target, out, how = sys.argv[1], sys.argv[2], sys.argv[3]
        if how == "file":
            os.symlink(target, out)
        elif how == "inside":
            open("real.txt", "w").write("made in scratch\\n")
            os.symlink(os.path.abspath("real.txt"), out)
        else:
            os.mkdir(out)
            open(os.path.join(out, "ok.txt"), "w").write("ok\\n")
            os.symlink(target, os.path.join(out, "link"))
        """,
    "module/linker.yaml": """
        output: {output: {type: file}}
        parameters:
          target: {type: str}
          how: {type: str, default: file}
        cmd: python -m toy.module.linker target output how
        """,
}


@pytest.mark.parametrize("how", ["file", "folder"])
def test_symlink_output_out_of_scratch_fails_and_changes_no_mode(env, ml, toy, tmp_path, how):
    precious = tmp_path / "precious.txt"
    precious.write_text("system file\n")
    precious.chmod(0o644)
    write_tree(toy, {**LINKER, "pipe/link.yaml": f"""
        jobs:
          link:
            module: toy/module/linker
            output: {{output: linked}}
            parameters: {{target: "{precious}", how: {how}}}
        """})
    result = ml("runpipe", "toy/pipe/link.yaml")
    assert result.code == 1
    assert "output output" in result.err and "outside the job's scratch directory" in result.err
    assert stat.S_IMODE(precious.stat().st_mode) == 0o644
    assert not list((env.home / "cache" / "data").rglob("*.json"))
    record = json.loads(next((env.home / "jobs").glob("*/job.json")).read_text())
    assert record["status"] == "failed"


def test_symlink_output_inside_scratch_is_published_as_a_copy(env, ml, toy, tmp_path):
    write_tree(toy, {**LINKER, "pipe/inside.yaml": """
        jobs:
          link: {module: toy/module/linker, output: {output: linked}, parameters: {target: unused, how: inside}}
        """})
    report = run_json(ml, "toy/pipe/inside.yaml")
    path = output_of(report, "link")
    assert results(report) == {"link": "ran"}
    assert not path.is_symlink() and path.read_text() == "made in scratch\n"


def test_dangling_symlink_in_an_output_folder_fails_the_job(env, ml, toy, tmp_path):
    write_tree(toy, {**LINKER, "pipe/dangling.yaml": f"""
        jobs:
          link:
            module: toy/module/linker
            output: {{output: linked}}
            parameters: {{target: "{tmp_path}/gone", how: folder}}
        """})
    result = ml("runpipe", "toy/pipe/dangling.yaml")
    assert result.code == 1 and "dangling symbolic link" in result.err and "link" in result.err
    record = json.loads(next((env.home / "jobs").glob("*/job.json")).read_text())
    assert record["status"] == "failed" and "dangling" in record["error"]


def test_fifo_output_fails_the_job_instead_of_hanging(env, ml, toy):
    write_tree(toy, {"module/fifo.py": "import os, sys\nos.mkfifo(sys.argv[1])\n",
                     "module/fifo.yaml": "output: {out: {type: file}}\ncmd: python -m toy.module.fifo out\n",
                     "pipe/fifo.yaml": "jobs:\n  f: {module: toy/module/fifo, output: {out: o}}\n"})
    result = ml("runpipe", "toy/pipe/fifo.yaml")
    assert result.code == 1 and "output out" in result.err and "not a regular file or folder" in result.err


# -- 5, 6: links in folder inputs ------------------------------------------------------------------
def folder_pipe(toy: Path, uri: str) -> str:
    write_tree(toy, {"pipe/folder.yaml": f"""
        jobs:
          read: {{module: toy/module/step, input: {{inputs: "{uri}"}}, output: {{output: o}}, parameters: {{name: r}}}}
        """})
    return "toy/pipe/folder.yaml"


def test_symlink_loop_in_a_folder_input_is_a_clear_error_not_a_hang(env, toy):
    (toy / "data" / "d").mkdir()
    (toy / "data" / "d" / "x.txt").write_text("x\n")
    os.symlink("..", toy / "data" / "d" / "up")
    pipe = folder_pipe(toy, "file://toy/data/d")
    # a bounded address space: the old walk grew without end
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))"
    for args in (["runpipe", pipe, "-n"], ["runpipe", pipe]):
        done = subprocess.run([sys.executable, "-c", f"{limit}\nimport sys; from mlpipe.cli.main import main;"
                               f" sys.exit(main({args!r}))"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        assert "job 'read'" in done.stderr and "input.inputs" in done.stderr
        assert "symbolic link loop" in done.stderr and "Traceback" not in done.stderr
    assert ml_process("gc", "--dry-run").returncode == 0


def test_symlink_out_of_the_app_in_a_file_input_is_refused(env, ml, toy, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not the app's\n")
    (toy / "data" / "d").mkdir()
    os.symlink(secret, toy / "data" / "d" / "leak.txt")
    result = ml("runpipe", folder_pipe(toy, "file://toy/data/d"), "-n")
    assert result.code == 2
    assert "job 'read'" in result.err and "input.inputs" in result.err and "outside" in result.err


def test_symlink_inside_the_app_is_followed(env, ml, toy):
    (toy / "data" / "d").mkdir()
    os.symlink("../seed.txt", toy / "data" / "d" / "seed.txt")
    assert results(run_json(ml, folder_pipe(toy, "file://toy/data/d"))) == {"read": "failed"}  # step reads files


def test_dangling_symlink_in_a_file_input_names_job_and_field(env, ml, toy):
    (toy / "data" / "d").mkdir()
    os.symlink("missing.txt", toy / "data" / "d" / "gone.txt")
    result = ml("runpipe", folder_pipe(toy, "file://toy/data/d"))
    assert result.code == 2
    assert "job 'read'" in result.err and "input.inputs" in result.err and "dangling" in result.err


# -- 7: no exception becomes `skipped` ----------------------------------------------------------------
@pytest.fixture
def tiny_home(tmp_path: Path):
    """A home on a 2 MB tmpfs (root can mount one; elsewhere the test is skipped)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount / "home"
    subprocess.run(["umount", "-l", str(mount)], check=False)


FILLER = {
    "module/fill.py": """
        import os, sys
        open(sys.argv[1], "w").write("result\\n")
        fd = os.open("filler", os.O_WRONLY | os.O_CREAT)  # the job leaves the disk full: ml's bookkeeping meets it
        try:
            while os.write(fd, b"x" * 4096):
                pass
        except OSError:
            pass
        """,
    "module/fill.yaml": "output: {out: {type: file}}\ncmd: python -m toy.module.fill out\n",
    "pipe/fill.yaml": "jobs:\n  fill: {module: toy/module/fill, output: {out: o}}\n",
}


def test_full_disk_during_bookkeeping_fails_the_job_and_the_next_run_recovers(env, toy, tiny_home):
    write_tree(toy, FILLER)
    home = {"MLPIPE_HOME": str(tiny_home)}
    run = ml_process("runpipe", "toy/pipe/fill.yaml", env=home)
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert "fill: failed" in run.stderr and "No space left on device" in run.stderr
    assert not list((tiny_home / "cache" / "data").rglob("*.json"))  # nothing half-published counts
    listed = json.loads(ml_process("listjob", "--json", env=home).stdout)
    assert [job["status"] for job in listed] == ["failed"]
    # the first run's unpublished bytes, replaced by the next run, would free the room it needs
    remove_tree(tiny_home / "cache" / "data")
    debug = ml_process("runpipe", "toy/pipe/fill.yaml", env={**home, "MLPIPE_DEBUG": "1"})
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    write_tree(toy, {"module/fill.py": "import sys\nopen(sys.argv[1], 'w').write('result\\n')\n"})
    fixed = ml_process("runpipe", "toy/pipe/fill.yaml", "--json", env=home)
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads(fixed.stdout)["jobs"][0]["result"] == "ran"


# -- 8: a killed `ml` leaves no second copy and no scratch -----------------------------------------------
def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_rerun_after_sigkill_stops_the_orphan_and_gc_removes_its_scratch(env, ml, toy):
    write_tree(toy, {"module/once.py": """
        import os, sys, time
        first = not os.path.exists(os.environ["TOY_LOG"])
        open(os.environ["TOY_LOG"], "a").write("once\\n")
        time.sleep(60 if first else 0)  # only the first execution hangs
        open(sys.argv[1], "w").write("done\\n")
        """, "module/once.yaml": "output: {out: {type: file}}\ncmd: python -m toy.module.once out\n",
        "pipe/slow.yaml": "jobs:\n  b: {module: toy/module/once, output: {out: o}}\n"})
    proc = subprocess.Popen([sys.executable, "-m", "mlpipe", "runpipe", "toy/pipe/slow.yaml"],
                            stderr=subprocess.DEVNULL)  # killed, never read
    records = env.home / "jobs"
    _wait_for(lambda: any(r is not None and r.pid for r in map(partial(read_record, records), job_ids(records))))
    proc.kill()
    proc.wait()
    orphan = json.loads(next(records.glob("*/job.json")).read_text())["pid"]
    os.kill(orphan, 0)  # the job outlived its `ml`
    assert ml_process("gc", "--keep-days", "0").returncode == 0
    assert any(p.name.startswith("job-") for p in (env.home / "cache" / "tmp").iterdir())  # its job still runs there
    rerun = ml_process("runpipe", "toy/pipe/slow.yaml")
    assert rerun.returncode == 0, rerun.stderr
    assert "left running by an `ml` that was killed" in rerun.stderr
    with pytest.raises(ProcessLookupError):
        for _ in range(100):
            os.kill(orphan, 0)
            time.sleep(0.05)
    assert env.executed() == ["once", "once"]
    collected = ml_process("gc", "--keep-days", "0")
    assert "and 1 scratch folders of dead processes" in collected.stdout, collected.stdout
    assert not any(p.name.startswith("job-") for p in (env.home / "cache" / "tmp").iterdir())


def test_waiting_for_a_job_another_pipe_runs_is_said(env, toy):
    shared = "b: {module: toy/module/step, output: {output: o}, parameters: {name: b, sleep: 2}}"
    write_tree(toy, {"pipe/p1.yaml": f"jobs:\n  {shared}\n", "pipe/p2.yaml": f"jobs:\n  {shared}\n"})
    first = subprocess.Popen([sys.executable, "-m", "mlpipe", "runpipe", "toy/pipe/p1.yaml"], stderr=subprocess.PIPE)
    _wait_for(lambda: env.executed() == ["b"])
    second = ml_process("runpipe", "toy/pipe/p2.yaml")
    first.communicate(timeout=30)
    assert second.returncode == 0 and env.executed() == ["b"]
    assert "waiting for job" in second.stderr and "toy/pipe/p1.yaml is running" in second.stderr


# -- 13: failure output ------------------------------------------------------------------------------------------
def test_failed_job_shows_its_stderr_tail_and_dry_run_says_it_failed(env, ml, toy):
    write_tree(toy, {"module/noisy.py": """
        import sys
        for i in range(30):
            print(f"line {i}", file=sys.stderr)
        sys.exit(4)
        """, "module/noisy.yaml": """
        output: {out: {type: file}}
        cmd: python -m toy.module.noisy out
        """, "pipe/noisy.yaml": """
        jobs:
          n: {module: toy/module/noisy, output: {out: o}}
        """})
    result = ml("runpipe", "toy/pipe/noisy.yaml")
    assert result.code == 1
    assert "exit code 4" in result.err and "line 29" in result.err and "line 10" in result.err
    assert "line 9\n" not in result.err  # the last 20 lines only
    assert dry(ml, "toy/pipe/noisy.yaml")["n"]["reasons"][0].startswith("last run failed (")


def test_killed_job_says_which_signal(env, ml, toy):
    write_tree(toy, {"module/die.py": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
                     "module/die.yaml": "output: {out: {type: file}}\ncmd: python -m toy.module.die out\n",
                     "pipe/die.yaml": "jobs:\n  d: {module: toy/module/die, output: {out: o}}\n"})
    result = ml("runpipe", "toy/pipe/die.yaml")
    assert result.code == 1 and "killed by SIGKILL" in result.err and "exit code -9" not in result.err
