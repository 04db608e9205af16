"""Every CLI meets its usual mistakes with exit code 2 and one line on stderr, no traceback."""

from __future__ import annotations

import pytest

from tests.support.helpers import TINY, cli

CASES = [
    # (CLI, arguments; NOPE = a missing path, EMPTY = an empty folder, FILE = a text file)
    ("tools.make_records", ()),
    ("tools.make_records", ("--input=NOPE", "--output=OUT")),
    ("tools.make_records", ("--input=FILE", "--output=OUT")),
    ("tools.make_records", ("--input=EMPTY", "--output=OUT")),
    ("tools.inspect_records", ()),
    ("tools.inspect_records", ("NOPE",)),
    ("tools.inspect_records", ("FILE",)),
    ("tools.make_sample_tiles", ("--output=FILE",)),
    ("tools.make_sample_tiles", ("--count=lots",)),
    ("satx.train", ("--workdir=OUT",)),
    ("satx.train", ("--records=EMPTY", "--workdir=OUT")),
    ("satx.train", ("--records=FILE", "--workdir=OUT")),
    ("satx.train", ("--records=EMPTY", "--workdir=OUT", "--backbone=resnet9000")),
    ("satx.tune", ("--records=NOPE", "--workdir=OUT")),
    ("satx.tune", ("--records=EMPTY", "--workdir=OUT", "--backbone=resnet9000")),
    ("satx.evaluate", ("--records=EMPTY", "--output=OUT")),
    ("satx.evaluate", ("--model=FILE", "--records=EMPTY", "--output=OUT")),
    ("satx.predict", ("--model=EMPTY", "--input=EMPTY")),
    ("satx.predict", ("--model=FILE", "--input=EMPTY", "--output=OUT")),
    ("satx.predict", ("--model=EMPTY", "--input=NOPE", "--output=OUT")),
    ("satx.bench", ("nope",)),
    ("satx.bench", ("input", "--data=NOPE")),
    ("satx.bench", ("train", "--backbone=resnet9000")),
    ("satx.sites", ()),
    ("satx.sites", ("--predictions=EMPTY", "--output=OUT")),
    ("satx.sites", ("--predictions=EMPTY", "--output=OUT", "--connectivity=6")),
    ("satx.review", ()),
    ("satx.review", ("--db=OUT.sqlite", "--predictions=EMPTY", "--tiles=t/{z}/{x}/{y}.jpg")),
]


@pytest.mark.slow
@pytest.mark.parametrize("command, args", CASES, ids=[" ".join([c, *a]) for c, a in CASES])
def test_a_usual_mistake_is_one_line_and_exit_code_2(command, args, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("not what was asked for\n")
    paths = {
        "NOPE": tmp_path / "nope",
        "EMPTY": tmp_path / "empty",
        "FILE": tmp_path / "file.txt",
        "OUT": tmp_path / "out",
    }
    for name, path in paths.items():
        args = tuple(a.replace(name, str(path)) for a in args)
    proc = cli(command, *args, env=TINY)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith(("error: ", "usage: ")), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
