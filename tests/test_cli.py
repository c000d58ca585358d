"""The `layerparallel` command line: train, config files, errors, checkpoints, plot, MPI.

Most cases call ``cli.main([...])`` in-process (it returns the exit status);
a few run ``python -m layerparallel`` (and under ``mpiexec``) as a subprocess.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import layerparallel as lp
from layerparallel import cli

from conftest import mpi_test, mpirun

# A small, fast job: ~20 ms per run (one core thread: tiny sweeps gain nothing from more,
# and spinning thread teams are slow on a busy machine).
SMALL = ["--width", "4", "--layers", "8", "--samples", "200", "--no-progress", "--threads", "1"]


@pytest.fixture(autouse=True)
def restore_threads():
    """--threads sets the core's process-wide thread count: restore it for other tests."""
    n = lp.get_num_threads()
    yield
    lp.set_num_threads(n)


def run_cli(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def read_log(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def assert_one_line_error(status, err, *fragments):
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("layerparallel: error: "), err
    for frag in fragments:
        assert frag in lines[0], err


# --------------------------------------------------------------------------- train

def test_train_writes_jsonl_log(tmp_path, capsys):
    log = tmp_path / "run.jsonl"
    status, out, err = run_cli(capsys, "train", *SMALL, "--iterations", "12",
                               "--validate-every", "5", "--log", str(log))
    assert status == 0, err
    records = read_log(log)
    assert [r["iteration"] for r in records] == list(range(1, 13))
    assert set(records[0]) == set(lp.History.STEP_KEYS + lp.History.VALIDATION_KEYS)
    assert all(isinstance(r["loss"], float) for r in records)
    assert records[-1]["loss"] < records[0]["loss"]
    validated = [r["iteration"] for r in records if r["val_accuracy"] is not None]
    assert validated == [5, 10, 12]  # every validate_every and the last
    # table rows for the validated iterations, then the summary line
    rows = [line.split()[0] for line in out.splitlines() if line[:6].strip().isdigit()]
    assert rows == ["5", "10", "12"]
    final = [line for line in out.splitlines() if line.startswith("final:")]
    assert len(final) == 1
    assert f"validation accuracy {records[-1]['val_accuracy']:.4f}" in final[0]
    assert "wall time" in final[0]


@pytest.mark.slow
def test_train_is_deterministic_and_module_entry_point(tmp_path, capsys):
    log = tmp_path / "a.jsonl"
    status, _, err = run_cli(capsys, "train", *SMALL, "--iterations", "5", "--log", str(log))
    assert status == 0, err
    proc = subprocess.run([sys.executable, "-m", "layerparallel", "train", *SMALL,
                           "--iterations", "5", "--log", str(tmp_path / "b.jsonl")],
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr
    assert "final: validation accuracy" in proc.stdout
    a, b = read_log(log), read_log(tmp_path / "b.jsonl")
    assert [r["loss"] for r in a] == pytest.approx([r["loss"] for r in b], rel=1e-12)


def test_no_arguments_is_the_main_job():
    args = cli.parse(cli.build_parser(), [])
    assert args.command == "train" and args.func is cli.train.run
    assert (args.problem, args.optimizer, args.mgrit) == ("peaks", "lbfgs", False)
    assert args.samples == 5000 and args.iterations >= 100
    # bare options also mean train
    args = cli.parse(cli.build_parser(), ["--iterations", "3"])
    assert args.command == "train" and args.iterations == 3


def test_demo_still_works(capsys):
    status, out, _ = run_cli(capsys, "demo", "--layers", "8", "--samples", "100")
    assert status == 0
    assert "gradient norm" in out


def test_regression_problem_reports_loss(tmp_path, capsys):
    log = tmp_path / "sine.jsonl"
    status, out, err = run_cli(capsys, "train", "--problem", "sine", *SMALL,
                               "--iterations", "6", "--log", str(log))
    assert status == 0, err
    assert "head='regression'" in out and "n_out=1" in out
    records = read_log(log)
    assert all(r["val_accuracy"] is None for r in records)
    assert records[-1]["val_loss"] is not None
    final = [line for line in out.splitlines() if line.startswith("final:")][0]
    assert "validation loss" in final and "accuracy" not in final
    # LSGD on a regression problem
    status, _, err = run_cli(capsys, "train", "--problem", "two_polynomials", *SMALL,
                             "--iterations", "3", "--lsgd", "--optimizer", "adam")
    assert status == 0, err


def test_mgrit_one_shot_records_iterations(tmp_path, capsys):
    log = tmp_path / "mg.jsonl"
    status, out, err = run_cli(capsys, "train", *SMALL, "--iterations", "4", "--mgrit",
                               "--cfactor", "2", "--one-shot", "2", "--log", str(log))
    assert status == 0, err
    records = read_log(log)
    # d cycles per solve: 2, unless adaptive one-shot raised it after a hard line search
    assert all(r["one_shot_cycles"] >= 2 for r in records)
    assert all(r["mgrit_forward_iterations"] == r["one_shot_cycles"] for r in records)
    assert all(r["mgrit_adjoint_iterations"] == r["one_shot_cycles"] for r in records)
    assert "MG fwd" in out
    assert out.splitlines()[[i for i, l in enumerate(out.splitlines())
                             if "MG fwd" in l][0]].split()[-3] == "d"  # the d column
    status, out, err = run_cli(capsys, "train", *SMALL, "--iterations", "2", "--mgrit",
                               "--cfactor", "2", "--one-shot", "2", "--no-adaptive-one-shot",
                               "--log", str(log))
    assert status == 0, err
    assert all(r["mgrit_forward_iterations"] == 2 for r in read_log(log))


def test_grad_tol_from_the_command_line(capsys):
    status, out, err = run_cli(capsys, "train", *SMALL, "--iterations", "400", "--optimizer",
                               "lbfgs", "--grad-tol", "0.3")
    assert status == 0, err
    final = [line for line in out.splitlines() if line.startswith("final:")][0]
    assert "(gradient norm below --grad-tol)" in final
    assert int(final.split(" after ")[1].split()[0]) < 400
    status, _, err = run_cli(capsys, "train", *SMALL, "--grad-tol", "0")
    assert status == 2 and "grad-tol" in err


def test_batch_blocks_from_the_command_line(tmp_path, capsys):
    """--batch-block ROWS solves one-shot (fixed-cycle) runs on blocks of rows: the
    same losses as the whole batch (0); with a tolerance it is a usage error."""
    losses = {}
    for block in ("0", "60", "auto"):
        log = tmp_path / f"b{block}.jsonl"
        status, _, err = run_cli(capsys, "train", *SMALL, "--iterations", "3", "--mgrit",
                                 "--cfactor", "2", "--one-shot", "2", "--no-adaptive-one-shot",
                                 "--batch-block", block, "--log", str(log))
        assert status == 0, err
        losses[block] = [r["loss"] for r in read_log(log)]
    np.testing.assert_allclose(losses["60"], losses["0"], rtol=1e-12)
    np.testing.assert_allclose(losses["auto"], losses["0"], rtol=1e-12)
    status, _, err = run_cli(capsys, "train", *SMALL, "--iterations", "1", "--mgrit",
                             "--batch-block", "60")
    assert status == 2 and "--batch-block needs a fixed number of cycles" in err
    status, _, err = run_cli(capsys, "train", *SMALL, "--mgrit", "--batch-block", "-3")
    assert status == 2 and "batch-block" in err


# --------------------------------------------------------------------------- config

def test_config_file_and_flags_override(tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text('[train]\nwidth = 5\nlayers = 8\nsamples = 200\niterations = 4\n'
                   'validate_every = 2\noptimizer = "adam"\nlr = 0.05\nno_progress = true\n'
                   'mgrit = true\ncfactor = [2]\nthreads = 1\n')
    log = tmp_path / "c.jsonl"
    pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    status, out, err = run_cli(capsys, "train", "--config", str(cfg), "--log", str(log))
    assert status == 0, err
    assert "width=5" in out and "Adam(lr=0.05" in out and "MGRIT(cfactor=2" in out
    assert len(read_log(log)) == 4
    # command-line flags win over the file, booleans included
    status, out, err = run_cli(capsys, "train", "--config", str(cfg), "--log", str(log),
                               "--iterations", "3", "--width", "3", "--no-mgrit")
    assert status == 0, err
    assert "width=3" in out and "serial propagation" in out
    assert len(read_log(log)) == 3


@pytest.mark.parametrize("text, fragment", [
    ("[train]\nwidht = 3\n", "unknown key 'widht'"),
    ("[train]\nwidth = 0\n", "--width"),
    ("[train]\nproblem = 'nope'\n", "invalid choice"),
    ("[train]\nmgrit = 'yes'\n", "true or false"),
    ("width = 3\n", "[train]"),
    ("[train\n", "invalid TOML"),
])
def test_bad_config_file(tmp_path, capsys, text, fragment):
    pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    status, _, err = run_cli(capsys, "train", "--config", str(cfg))
    assert_one_line_error(status, err, str(cfg), fragment)


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("argv, fragment", [
    (["train", "--bogus"], "--bogus"),
    (["train", "--width", "0"], "--width"),
    (["train", "--width", "eight"], "--width"),
    (["train", "--problem", "cifar"], "invalid choice"),
    (["train", "--problem", "mnist"], "--data-dir"),
    (["train", "--problem", "mnist", "--data-dir", "/nonexistent"], "train-images-idx3-ubyte"),
    (["train", *SMALL, "--model", "conv"], "image data"),
    (["train", *SMALL, "--problem", "digits-images", "--model", "conv", "--kernel-size", "4"],
     "odd"),
    (["train", "--config", "/nonexistent/run.toml"], "/nonexistent/run.toml"),
    (["train", "--validation-fraction", "1.5"], "--validation-fraction"),
    (["train", *SMALL, "--one-shot", "2"], "--mgrit"),
    (["train", *SMALL, "--resume"], "--checkpoint"),
    (["train", *SMALL, "--mgrit", "--relax", "FXF"], "relax"),          # library ValueError
    (["train", *SMALL, "--width", "70000"], "width"),                    # library ValueError
    (["train", *SMALL, "--lsgd"], "lsgd"),                               # library ValueError
    (["train", *SMALL, "--log", "/nonexistent/dir/run.jsonl"], "run.jsonl"),
    (["plot", "/nonexistent/run.jsonl"], "/nonexistent/run.jsonl"),
    (["frobnicate"], "invalid choice"),
])
def test_user_errors_are_one_line_exit_2(capsys, argv, fragment):
    status, _, err = run_cli(capsys, *argv)
    assert_one_line_error(status, err, fragment)
    assert "Traceback" not in err


def test_missing_checkpoint_is_one_line(tmp_path, capsys):
    status, _, err = run_cli(capsys, "train", *SMALL, "--checkpoint", str(tmp_path / "none"),
                             "--resume")
    assert_one_line_error(status, err, "no checkpoint")


@pytest.mark.slow
def test_subprocess_errors_exit_2_without_traceback():
    for argv in (["train", "--nope"], ["train", "--width", "0"], ["train", "--problem", "x"]):
        proc = subprocess.run([sys.executable, "-m", "layerparallel", *argv],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert proc.stderr.startswith("layerparallel: error: ")


# --------------------------------------------------------------------------- checkpoints

def test_checkpoint_resume_matches_uninterrupted_run(tmp_path, capsys):
    base = ["train", *SMALL, "--validate-every", "3", "--checkpoint-every", "4"]
    full = tmp_path / "full.jsonl"
    status, _, err = run_cli(capsys, *base, "--iterations", "12", "--log", str(full))
    assert status == 0, err
    ck = tmp_path / "ck"
    part = tmp_path / "part.jsonl"
    # "interrupted" after 8 iterations (last checkpoint at 8), then resumed to 12
    status, _, err = run_cli(capsys, *base, "--iterations", "8", "--checkpoint", str(ck),
                             "--log", str(part))
    assert status == 0, err
    assert os.path.exists(ck / "checkpoint.8.rank0.npz")
    status, _, err = run_cli(capsys, *base, "--iterations", "12", "--checkpoint", str(ck),
                             "--resume", "--log", str(part))
    assert status == 0, err
    a, b = read_log(full), read_log(part)
    assert [r["iteration"] for r in b] == list(range(1, 13))  # the whole history
    assert b[-1]["loss"] == pytest.approx(a[-1]["loss"], rel=1e-12, abs=0)
    assert b[-1]["val_loss"] == pytest.approx(a[-1]["val_loss"], rel=1e-12, abs=0)
    # a checkpoint of a different run is refused
    status, _, err = run_cli(capsys, "train", "--width", "5", "--layers", "8", "--samples",
                             "200", "--no-progress", "--iterations", "12", "--checkpoint",
                             str(ck), "--resume")
    assert_one_line_error(status, err, "different run")


# --------------------------------------------------------------------------- plot

def _two_logs(tmp_path, capsys):
    logs = []
    for opt in ("lbfgs", "adam"):
        log = tmp_path / f"{opt}.jsonl"
        status, _, err = run_cli(capsys, "train", *SMALL, "--iterations", "6",
                                 "--optimizer", opt, "--log", str(log))
        assert status == 0, err
        logs.append(str(log))
    return logs


@pytest.mark.slow
def test_plot_writes_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    logs = _two_logs(tmp_path, capsys)
    out = tmp_path / "fig.png"
    status, stdout, err = run_cli(capsys, "plot", *logs, "-o", str(out), "--x", "wall_time")
    assert status == 0, err
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    status, _, err = run_cli(capsys, "plot", logs[0], "-o", str(tmp_path / "g.png"),
                             "--y", "grad_norm,val_loss", "--y", "train_accuracy")
    assert status == 0, err
    assert (tmp_path / "g.png").stat().st_size > 0
    # default output name: the first log's with .png
    status, _, err = run_cli(capsys, "plot", logs[0])
    assert status == 0, err
    assert os.path.exists(os.path.splitext(logs[0])[0] + ".png")
    status, _, err = run_cli(capsys, "plot", logs[0], "--y", "nonsense")
    assert_one_line_error(status, err, "nonsense")


def test_plot_without_matplotlib_exits_2(tmp_path, capsys, monkeypatch):
    logs = _two_logs(tmp_path, capsys)
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends",
                 "matplotlib.backends.backend_agg", "matplotlib.pyplot"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    status, _, err = run_cli(capsys, "plot", *logs, "-o", str(tmp_path / "fig.png"))
    assert_one_line_error(status, err, "matplotlib")
    assert not (tmp_path / "fig.png").exists()


def test_plot_module_imports_without_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    import importlib

    import layerparallel.plot as plot

    importlib.reload(plot)
    with pytest.raises(ImportError):
        plot.plot_history([[{"iteration": 1, "loss": 1.0}]], ["a"], out="x.png")


def test_plot_bad_log(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"iteration": 1, "loss": 1.0}\nnot json\n')
    status, _, err = run_cli(capsys, "plot", str(bad))
    assert_one_line_error(status, err, "bad.jsonl:2")


# --------------------------------------------------------------------------- MPI

@mpi_test
def test_two_ranks_mgrit_match_one_rank(tmp_path, capsys):
    pytest.importorskip("mpi4py")
    args = ["train", "--width", "4", "--layers", "16", "--samples", "200", "--iterations",
            "8", "--validate-every", "4", "--mgrit", "--cfactor", "2", "--no-progress",
            "--threads", "1"]
    log1, log2 = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    status, _, err = run_cli(capsys, *args, "--log", str(log1))
    assert status == 0, err
    proc = mpirun(2, "-m", "layerparallel", *args, "--log", str(log2))
    assert proc.stdout.count("final:") == 1  # only rank 0 prints
    assert "2 ranks" in proc.stdout
    one, two = read_log(log1), read_log(log2)
    assert len(one) == len(two) == 8
    assert two[-1]["loss"] == pytest.approx(one[-1]["loss"], rel=1e-8, abs=0)
    assert two[-1]["val_accuracy"] == one[-1]["val_accuracy"]


def test_nested_training_from_the_command_line(tmp_path):
    from layerparallel import cli

    log = tmp_path / "n.jsonl"
    rc = cli.main(["train", "--nested", "3", "--schedule", "6,4,3", "--layers", "16",
                   "--samples", "300", "--threads", "1", "--no-progress", "--log", str(log)])
    assert rc == 0
    import json
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["n_layers"] for r in rows] == [4] * 6 + [8] * 4 + [16] * 3
    assert rows[-1]["work_units"] > rows[0]["work_units"] > 0
    assert cli.main(["train", "--nested", "3", "--schedule", "6,4", "--threads", "1"]) == 2


# --------------------------------------------------------------------------- image problems

CONV = ["--problem", "digits-images", "--model", "conv", "--channels", "3", "--layers", "4",
        "--samples", "60", "--no-progress", "--threads", "1"]


def test_conv_model_on_digit_images_with_mgrit_and_checkpoint(tmp_path, capsys):
    pytest.importorskip("sklearn")
    log, ck = tmp_path / "run.jsonl", tmp_path / "ck"
    status, out, err = run_cli(capsys, "train", *CONV, "--iterations", "4", "--mgrit",
                               "--cfactor", "2", "--one-shot", "1", "--optimizer", "adam",
                               "--log", str(log), "--checkpoint", str(ck),
                               "--checkpoint-every", "2")
    assert status == 0, err
    assert "ConvODEResNet(in_shape=(1, 8, 8), channels=3, n_layers=4" in out
    first = read_log(log)
    status, _, err = run_cli(capsys, "train", *CONV, "--iterations", "6", "--mgrit",
                             "--cfactor", "2", "--one-shot", "1", "--optimizer", "adam",
                             "--log", str(log), "--checkpoint", str(ck), "--resume")
    assert status == 0, err
    resumed = read_log(log)
    assert [r["iteration"] for r in resumed] == list(range(1, 7))
    assert resumed[:4] == first
    assert resumed[-1]["val_accuracy"] is not None


def test_dense_model_flattens_images_and_nested_conv_runs(capsys):
    pytest.importorskip("sklearn")
    status, out, err = run_cli(capsys, "train", "--problem", "digits-images", *SMALL,
                               "--iterations", "2")
    assert status == 0, err
    assert "n_in=64" in out
    status, out, err = run_cli(capsys, "train", *CONV, "--nested", "2", "--schedule", "2,2")
    assert status == 0, err
    assert "nested" in out


def test_files_problems_from_data_dir(tmp_path, capsys):
    from test_image_data import fake_indian_pines, fake_mnist

    fake_mnist(tmp_path, n_train=20, n_test=10)
    status, out, err = run_cli(capsys, "train", "--problem", "mnist", "--data-dir",
                               str(tmp_path), "--model", "conv", "--channels", "2", "--layers",
                               "2", "--samples", "20", "--iterations", "2", "--no-progress")
    assert status == 0, err
    assert "mnist: 20 training / 4 test images" in out
    fake_indian_pines(tmp_path)
    status, out, err = run_cli(capsys, "train", "--problem", "indian-pines", "--data-dir",
                               str(tmp_path), "--width", "220", "--layers", "8",
                               "--nested", "3", "--schedule", "2,2,1", "--samples", "50",
                               "--no-progress", "--threads", "1")
    assert status == 0, err
    assert "indian-pines: 40 training / 10 validation" in out


@pytest.mark.slow
@mpi_test
def test_conv_checkpoint_of_two_ranks_resumes_on_one(tmp_path, capsys):
    pytest.importorskip("sklearn")
    ck, log = tmp_path / "ck", tmp_path / "run.jsonl"
    args = [*CONV, "--optimizer", "adam", "--checkpoint", str(ck)]
    mpirun(2, "-m", "layerparallel", "train", *args, "--iterations", "2",
           "--checkpoint-every", "1")
    status, _, err = run_cli(capsys, "train", *args, "--iterations", "4", "--resume",
                             "--log", str(log))
    assert status == 0, err
    status, _, err = run_cli(capsys, "train", *CONV, "--optimizer", "adam", "--iterations",
                             "4", "--log", str(tmp_path / "straight.jsonl"))
    assert status == 0, err
    resumed, straight = read_log(log), read_log(tmp_path / "straight.jsonl")
    assert resumed[-1]["loss"] == pytest.approx(straight[-1]["loss"], rel=1e-10, abs=0)


# --------------------------------------------------------------------------- output

def test_progress_without_tqdm_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import raises ImportError
    log = tmp_path / "run.jsonl"
    status, out, err = run_cli(capsys, "train", *SMALL[:-3], "--threads", "1", "--progress",
                               "--iterations", "3", "--log", str(log))
    assert_one_line_error(status, err, "--progress needs tqdm")
    assert out == "" and not log.exists()
    # without --progress a missing tqdm just means no bar
    status, out, err = run_cli(capsys, "train", *SMALL[:-3], "--threads", "1",
                               "--iterations", "3")
    assert status == 0, err
    assert "final:" in out


def test_table_is_printed_live_and_no_bar_off_a_terminal(tmp_path, capsys):
    pytest.importorskip("tqdm")
    status, out, err = run_cli(capsys, "train", *SMALL[:-3], "--threads", "1", "--progress",
                               "--iterations", "6", "--validate-every", "3")
    assert status == 0, err
    assert "\r" not in out + err  # captured output is not a terminal: no bar
    rows = [line.split()[0] for line in out.splitlines() if line[:6].strip().isdigit()]
    assert rows == ["3", "6"]


def test_log_respects_the_umask(tmp_path, capsys):
    log = tmp_path / "run.jsonl"
    old = os.umask(0o022)
    try:
        status, _, err = run_cli(capsys, "train", *SMALL, "--iterations", "2", "--log", str(log))
    finally:
        os.umask(old)
    assert status == 0, err
    assert (log.stat().st_mode & 0o777) == 0o644


def test_nested_table_has_a_level_column_under_the_plan(tmp_path, capsys):
    status, out, err = run_cli(capsys, "train", *SMALL, "--nested", "2", "--schedule", "2,2",
                               "--validate-every", "1")
    assert status == 0, err
    lines = out.splitlines()
    plan = next(i for i, line in enumerate(lines) if line.strip().startswith("nested"))
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["level", "iter"])
    assert plan < header
    rows = [line.split() for line in lines[header + 2:] if line[:5].strip().isdigit()]
    assert [(r[0], r[1]) for r in rows] == [("0", "1"), ("0", "2"), ("1", "3"), ("1", "4")]


def test_resuming_a_finished_run_says_so(tmp_path, capsys):
    ck = tmp_path / "ck"
    args = ["train", *SMALL, "--iterations", "3", "--checkpoint", str(ck)]
    assert run_cli(capsys, *args)[0] == 0
    status, out, err = run_cli(capsys, *args, "--resume")
    assert status == 0, err
    assert "nothing to train" in out and "3 of 3 iterations" in out


def test_every_option_has_help_and_one_default():
    parser = cli.build_parser()
    for name, sub in parser.command_parsers.items():
        for action in sub._actions:
            if action.option_strings:
                assert action.help, (name, action.option_strings)
        text = sub.format_help()
        for option in text.split("\n  -")[1:]:  # the formatter's "(default: x)" only alone
            assert "(default:" not in option or option.count("default") == 1, (name, option)
    assert "One forward and one backward sweep" in parser.command_parsers["demo"].format_help()


def test_warnings_print_as_one_line(tmp_path, capsys):
    """A library warning (here: resuming one-shot training from a checkpoint
    without warm states) is one `layerparallel: warning:` line, not Python's
    file:line block."""
    ck = tmp_path / "ck"
    args = ["train", *SMALL, "--mgrit", "--one-shot", "2", "--checkpoint", str(ck),
            "--no-checkpoint-warm-states"]
    assert run_cli(capsys, *args, "--iterations", "2")[0] == 0
    status, _, err = run_cli(capsys, *args, "--iterations", "3", "--resume")
    assert status == 0, err
    lines = [line for line in err.splitlines() if "warm states" in line]
    assert len(lines) == 1, err
    assert lines[0].startswith("layerparallel: warning: checkpoint ")
    assert "Warning" not in err and ".py:" not in err
