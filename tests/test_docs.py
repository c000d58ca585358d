"""Every fenced code block of README.md and docs/*.md runs as written.

The convention (for everyone who writes these pages):

- a ```python block runs in a fresh interpreter (this one, ``sys.executable``);
- a ```bash block runs with ``bash -e`` (``mpiexec -n K ...`` lines as they
  are; ``python`` and ``mpiexec`` on PATH are this interpreter and the MPI its
  mpi4py uses);
- a block right after a line ``<!-- no-test: reason -->`` is skipped, with
  that reason;
- ```text blocks (output listings) and blocks of any other language never run.

Where the blocks run: "the repository root" is a fresh temporary directory
per block that holds a copy of ``examples/`` and links to every other
top-level entry of the repository (``docs``, ``tests``, ``bench``, ...), so
that the files a block writes at the root (``run.jsonl``, ``ck/``, figures)
land in the temporary directory instead of the work tree. The blocks of one
page run in page order in the same directory, so a later block may read what
an earlier one wrote (a log it plots, a checkpoint it resumes).

Each block is one test (``README.md:LINE``), marked ``slow`` (they start
interpreters and train small networks), and ``mpi`` when it launches mpiexec.
"""

import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import MPI_READY, REPO, tool_env

FENCE = re.compile(r"^```\s*([A-Za-z0-9_+-]*)\s*$")
NO_TEST = re.compile(r"^\s*<!--\s*no-test:\s*(.*?)\s*-->\s*$")
RUNS = ("python", "bash")
TIMEOUT = {"python": 300, "bash": 600}
SKIP_ENTRIES = {".git", ".venv", "build", "examples", ".pytest_cache"}


def pages():
    docs = os.path.join(REPO, "docs")
    found = [os.path.join(REPO, "README.md")]
    if os.path.isdir(docs):
        found += sorted(os.path.join(docs, f) for f in os.listdir(docs) if f.endswith(".md"))
    return found


def blocks(text):
    """[(line of the opening fence, language, code, no-test reason or None)]."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1).lower()
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        skip = NO_TEST.match(lines[start - 1]) if start > 0 else None
        out.append((start + 1, lang, "\n".join(lines[start + 1:j]) + "\n",
                    skip.group(1) if skip else None))
        i = j + 1
    return out


def cases():
    params = []
    for page in pages():
        with open(page, encoding="utf-8") as f:
            found = blocks(f.read())
        name = os.path.relpath(page, REPO)
        for line, lang, code, skip in found:
            if lang not in RUNS:
                continue
            marks = [pytest.mark.slow]
            if re.search(r"(^|[;&|(\s])mpiexec\s", code):
                marks += [pytest.mark.mpi,
                          pytest.mark.skipif(not MPI_READY, reason="needs mpiexec and MPI")]
            if skip is not None:
                marks.append(pytest.mark.skip(reason=f"no-test: {skip}"))
            params.append(pytest.param(name, line, lang, code, id=f"{name}:{line}", marks=marks))
    return params


_roots = {}


def root_for(page, tmp_path_factory):
    """The page's stand-in for the repository root (see the module docstring)."""
    if page not in _roots:
        root = tmp_path_factory.mktemp("docroot")
        for entry in os.listdir(REPO):
            if entry in SKIP_ENTRIES:
                continue
            os.symlink(os.path.join(REPO, entry), root / entry)
        if os.path.isdir(os.path.join(REPO, "examples")):
            shutil.copytree(os.path.join(REPO, "examples"), root / "examples")
        _roots[page] = root
    return _roots[page]


@pytest.mark.parametrize("page, line, lang, code", cases())
def test_block_runs(page, line, lang, code, tmp_path_factory):
    root = root_for(page, tmp_path_factory)
    cmd = [sys.executable, "-c", code] if lang == "python" else ["bash", "-e", "-c", code]
    env = tool_env(MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
    try:
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT[lang], stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{page}:{line} ({lang}) ran past {TIMEOUT[lang]} s")
    assert proc.returncode == 0, (f"{page}:{line} ({lang}) exited {proc.returncode}\n"
                                  f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")


# ---- the extractor itself (fast) ----------------------------------------------

def test_extractor_follows_the_convention():
    page = "\n".join([
        "```python", "print(1)", "```",
        "<!-- no-test: cluster only -->", "```bash", "module load mpi", "```",
        "```text", "not run", "```",
        "```bash", "mpiexec -n 2 true", "```",
    ])
    found = blocks(page)
    assert [(line, lang, skip) for line, lang, _, skip in found] == [
        (1, "python", None), (5, "bash", "cluster only"), (8, "text", None), (11, "bash", None)]
    assert found[0][2] == "print(1)\n"


def test_the_pages_have_runnable_blocks():
    params = cases()
    ids = [p.id for p in params]
    assert sum(i.startswith("README.md:") for i in ids) >= 8, ids
    running = [p for p in params if not any(m.name == "skip" for m in p.marks)]
    assert any(p.values[2] == "bash" and "mpiexec" in p.values[3] for p in running)
    assert any(p.id.startswith("docs/") for p in running)
