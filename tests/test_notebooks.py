"""The course notebooks: generated files in sync with the source; the exercise blanks.

The solution notebook itself runs under nbval (``python -m pytest`` collects
``solutions/``; see pytest.ini); these tests check what nbval cannot.
"""

import importlib.util
import os
from pathlib import Path

import nbformat
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "make_exercise", REPO_ROOT / "tools" / "make_exercise.py"
)
make_exercise = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_exercise)

SOLUTION_TEXT = make_exercise.SOLUTION_PY.read_text(encoding="utf-8")

SMALL_SOURCE = """\
# %% [markdown]
# A lesson.

# %%
def f(x):
    # [solution 1] return twice x
    return 2 * x
    # [end solution 1]


# %%
# [solution 2] print f(3)
print(f(3))
# [end solution 2]
"""


def test_exercise_py_is_what_the_generator_makes():
    expected = make_exercise.exercise_source(SOLUTION_TEXT)
    assert (
        make_exercise.EXERCISE_PY.read_text(encoding="utf-8") == expected
    ), "notebooks/ is stale: run python tools/make_exercise.py"


def test_exercise_ipynb_is_what_the_generator_makes():
    expected = make_exercise.generated_exercise_files(SOLUTION_TEXT)[
        make_exercise.EXERCISE_IPYNB
    ]
    assert make_exercise.EXERCISE_IPYNB.read_bytes() == expected.encode(
        "utf-8"
    ), "notebooks/ is stale: run python tools/make_exercise.py"


def test_exercise_notebook_has_no_outputs():
    notebook = nbformat.read(make_exercise.EXERCISE_IPYNB, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells and all(not cell.outputs for cell in code_cells)


def test_solution_notebook_matches_its_source():
    committed = nbformat.read(make_exercise.SOLUTION_IPYNB, as_version=4)
    expected = make_exercise.notebook_from_source(
        make_exercise.solution_source(SOLUTION_TEXT)
    )
    assert make_exercise.cell_sources(committed) == make_exercise.cell_sources(
        expected
    ), (
        "solutions/dgcnn_cosmic_rays.ipynb is stale: run "
        "python tools/make_exercise.py --execute"
    )


def test_solution_notebook_is_executed():
    # nbval only compares cells stored with an execution count; an unexecuted notebook
    # would pass vacuously.
    committed = nbformat.read(make_exercise.SOLUTION_IPYNB, as_version=4)
    code_cells = [cell for cell in committed.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code_cells)
    assert sum(bool(cell.outputs) for cell in code_cells) >= 10


def test_solution_notebook_shows_no_markers_and_exercise_no_solution():
    solution = make_exercise.solution_source(SOLUTION_TEXT)
    exercise = make_exercise.exercise_source(SOLUTION_TEXT)
    assert "[solution" not in solution and "[end solution" not in solution
    for region in make_exercise.find_solution_regions(SOLUTION_TEXT):
        solution_lines = SOLUTION_TEXT.splitlines()[region["start"] + 1 : region["end"]]
        for line in solution_lines:
            if line.strip() and line.strip() not in ("return x", ")"):
                assert line not in exercise.splitlines(), line


def test_blanks_replace_regions_in_order():
    exercise = make_exercise.exercise_source(SMALL_SOURCE)
    assert "return 2 * x" not in exercise and "print(f(3))" not in exercise
    assert (
        "def f(x):\n"
        "    raise NotImplementedError(\n"
        '        "Exercise 1: return twice x"\n'
        "    )\n"
    ) in exercise
    assert 'raise NotImplementedError(\n    "Exercise 2: print f(3)"\n)\n' in exercise


def test_solution_source_only_drops_marker_lines():
    solution = make_exercise.solution_source(SMALL_SOURCE)
    assert solution.splitlines() == [
        line for line in SMALL_SOURCE.splitlines() if "solution" not in line
    ]


def test_generated_notebook_is_reproducible():
    first = make_exercise.notebook_text(
        make_exercise.notebook_from_source(SMALL_SOURCE)
    )
    second = make_exercise.notebook_text(
        make_exercise.notebook_from_source(SMALL_SOURCE)
    )
    assert first == second
    notebook = nbformat.reads(first, as_version=4)
    assert [cell.id for cell in notebook.cells] == ["cell-00", "cell-01", "cell-02"]


def test_check_command_passes_on_the_committed_files():
    assert make_exercise.main(["--check"]) == 0


@pytest.mark.parametrize(
    "arguments",
    [["--quick"], ["--output", "x.ipynb"], ["--execute", "--output", "x.txt"]],
)
def test_command_line_rejects_options_that_do_not_fit(arguments):
    with pytest.raises(SystemExit):
        make_exercise.main(arguments)


def test_full_run_is_refused_while_the_environment_asks_for_quick_mode(
    monkeypatch, capsys
):
    # COURSE_QUICK=1 in the shell (as the test command sets it) must not silently start
    # the half-hour full run; the message names both ways out.
    monkeypatch.setenv("COURSE_QUICK", "1")

    def must_not_run(*args, **kwargs):
        raise AssertionError("the full lesson was started")

    monkeypatch.setattr(make_exercise, "execute_solution", must_not_run)
    with pytest.raises(SystemExit):
        make_exercise.main(["--execute", "--output", "never_written.ipynb"])
    message = capsys.readouterr().err
    assert "--quick" in message and "unset COURSE_QUICK" in message
    assert not (make_exercise.REPO_ROOT / "never_written.ipynb").exists()


def test_written_files_get_the_usual_mode_not_a_private_one(tmp_path):
    path = tmp_path / "notebook.ipynb"
    make_exercise.write_atomically(path, "{}")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert path.read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["notebook.ipynb"]


@pytest.mark.parametrize(
    "source, message",
    [
        ("# [solution 1] a\nx = 1\n", "never closed"),
        ("# [solution 1] a\n# [solution 2] b\nx\n# [end solution 2]\n", "do not nest"),
        ("# [solution 2] a\nx = 1\n# [end solution 2]\n", "solution 1 was expected"),
        ("x = 1\n# [end solution 1]\n", "not open"),
        ("# [solution 1] a\n# [end solution 1]\n", "is empty"),
        ("x = 1\n", "no '# \\[solution 1\\]"),
    ],
)
def test_malformed_markers_are_reported(source, message):
    with pytest.raises(make_exercise.MarkerError, match=message):
        make_exercise.exercise_source(source)


def test_exercise_stops_at_its_first_blank():
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(make_exercise.EXERCISE_IPYNB, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    first_use = next(
        i for i, cell in enumerate(code_cells) if "EdgeConv(lambda" in cell.source
    )
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(make_exercise.EXERCISE_IPYNB.parent)}},
    )
    with pytest.raises(CellExecutionError) as raised:
        client.execute()

    assert raised.value.ename == "NotImplementedError"
    assert raised.value.evalue.startswith("Exercise 1: fill in the body of kernel_nn")
    errors = [
        i
        for i, cell in enumerate(code_cells)
        if any(output.output_type == "error" for output in cell.get("outputs", []))
    ]
    assert errors == [first_use], "the first error must come from the first blank"
    assert all(cell.execution_count is not None for cell in code_cells[:first_use])
