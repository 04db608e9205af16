"""The tree is the architecture: stage packages, one-way imports, thin CLIs, light records/io.

Imports are read from the source (every `import`, including those inside functions and under
TYPE_CHECKING), so a cycle that only closes at run time is still caught.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helpers import REPO, TILE

PACKAGE = REPO / "satx"
MAX_TOP_MODULES = 8
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_cli(name: str) -> bool:
    """CLI modules: `satx.cli.*`, a package's `__main__` or `cli`, the records tools' `*_main`."""
    last = name.rsplit(".", 1)[-1]
    return name.startswith("satx.cli") or last in ("__main__", "cli") or last.endswith("_main")


def _imports(path: Path) -> set[str]:
    """Every satx module `path` imports, anywhere in the file.

    Packages imported on the way count too (importing `satx.a.b` runs `satx/a/__init__.py`),
    except the module's own packages, which are already running when it is imported.
    """
    own = _module_name(path).split(".")
    ancestors = {".".join(own[:i]) for i in range(1, len(own))}
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [
                f"{node.module}.{alias.name}"
                if f"{node.module}.{alias.name}" in MODULES
                else node.module
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            if not name.startswith("satx"):
                continue
            while name not in MODULES:  # `import satx.a.b.attr` style: the module part
                name = name.rsplit(".", 1)[0]
            parts = name.split(".")
            found.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
    return found - ancestors


GRAPH = {name: _imports(path) - {name} for name, path in MODULES.items()}


def test_at_most_eight_modules_at_the_top():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, top
    stages = {"io", "tiles", "records", "data", "models", "artifact", "train", "tune", "evaluate"}
    stages |= {"predict"}
    stages |= {"sites", "export", "review", "bench"}
    assert stages | {"cli"} <= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}


def test_no_import_cycles():
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(GRAPH[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in sorted(GRAPH):
        if name not in index:
            visit(name)
    assert not cycles, f"import cycles: {cycles}"


def test_library_code_never_imports_a_cli():
    offenders = {
        name: sorted(dep for dep in deps if is_cli(dep))
        for name, deps in GRAPH.items()
        if not is_cli(name)
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_data_flows_one_way_through_the_stages():
    """A stage imports only the stages before it, its command line included.

    The trained model is one layer (`artifact`) below training: train writes it, and export,
    predict, evaluate and bench only open, score and convert it. evaluate comes after sites
    (it reuses their grouping); review reads predict's and sites' results; bench measures all.
    The shared command-line helpers (`satx.cli`) import no stage but io."""
    order = ["io", "tiles", "records", "data", "models", "artifact", "train", "tune", "export"]
    order += ["predict", "sites", "evaluate", "review", "bench"]
    rank = {stage: i for i, stage in enumerate(order)}

    def stage(name: str) -> str | None:
        parts = name.split(".")
        return parts[1] if len(parts) > 1 and parts[1] in rank else None

    backwards = [
        (name, dep)
        for name, deps in GRAPH.items()
        for dep in deps
        if stage(name) and stage(dep) and rank[stage(dep)] > rank[stage(name)]
    ]
    assert not backwards
    helpers = {n: {d for d in GRAPH[n] if stage(d) not in (None, "io")} for n in GRAPH}
    assert not {n: d for n, d in helpers.items() if n.startswith("satx.cli") and d}


def test_no_module_is_longer_than_the_limit():
    long = {name: n for name, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"split these (lines): {long}"


def test_tests_mirror_the_tree():
    for package in PACKAGE.iterdir():
        if (package / "__init__.py").exists() and package.name != "cli":
            assert (REPO / "tests" / package.name / "__init__.py").exists(), package.name


def _loaded_after(code: str) -> list[str]:
    probe = code + "\nprint(*(m in sys.modules for m in ('tensorflow', 'keras')))"
    out = subprocess.run(
        [sys.executable, "-c", "import sys\n" + probe],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    return out.stdout.split()[-2:]


def test_importing_records_tiles_io_sites_review_and_config_leaves_tf_and_keras_unloaded():
    stages = (["records"], ["io"], ["tiles"], ["sites"], ["review"])
    light = [n for n in MODULES if n.split(".")[1:2] in stages and not is_cli(n)]
    light += ["satx.config", "satx.geo", "satx.errors", "satx.cli", "satx.cli.flags"]
    assert _loaded_after("".join(f"import {n}\n" for n in light)) == ["False", "False"]
    light_clis = ("satx.records.", "satx.sites.", "satx.review.")
    for cli_module in [n for n in MODULES if n.startswith(light_clis) and is_cli(n)]:
        assert _loaded_after(f"import {cli_module}") == ["False", "False"], cli_module


def test_making_and_inspecting_records_runs_without_tensorflow(tmp_path):
    code = f"""
from satx.config import RecordsConfig
from satx.records import verify
from satx.records.make import make_records
from satx.records.sample import write_sample_tiles
write_sample_tiles({str(tmp_path / "tiles")!r}, count=12, size={TILE})
make_records(RecordsConfig(input={str(tmp_path / "tiles")!r}, output={str(tmp_path / "r")!r},
                           image_size={TILE}, min_shards=1, workers=2))
assert all(c.problem is None for c in verify.verify({str(tmp_path / "r")!r}))
assert len(verify.first_examples({str(tmp_path / "r")!r}, 3)) == 3
"""
    assert _loaded_after(code) == ["False", "False"]


def _chatter(stderr: str) -> list[str]:
    markers = ("oneDNN", "cpu_feature_guard", "Restoring pure python", "I0000 ", "W0000 ")
    return [line for line in stderr.splitlines() if any(m in line for m in markers)]


@pytest.mark.parametrize(
    "args",
    [
        ("satx.train", "--records=nope", "--workdir=w", "--weights=none"),
        ("satx.predict", "--model=nope", "--output=o", "--input=nope"),
        ("satx.evaluate", "--model=nope", "--records=nope", "--output=o"),
    ],
)
def test_a_cli_is_quiet_unless_asked(args, tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}

    def run(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", *args, *extra],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(REPO)},
        )

    quiet = run()
    assert quiet.returncode == 2 and "\nerror: " in "\n" + quiet.stderr, quiet.stderr
    assert not _chatter(quiet.stderr), quiet.stderr
    if args[0] == "satx.train":  # TensorFlow loaded before the error: its notices come back
        loud = run("--verbosity=1")
        assert loud.returncode == 2 and _chatter(loud.stderr), loud.stderr
