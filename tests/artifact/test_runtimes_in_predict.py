"""`satx.predict --runtime=...` over an HTTP tile service with test-time augmentation: a run
killed with SIGKILL and resumed, and the Beam engine with 2 worker processes, write the rows an
unbroken local run with the same runtime writes."""

import json

import pytest

from satx.bench.tileserver import TileServer
from satx.config import PredictConfig, SourceConfig
from satx.predict.run import predict
from tests.artifact.conftest import needs_runtimes
from tests.support.helpers import cli
from tests.support.predict import BBOX, predicted_rows, same_outputs

pytestmark = [needs_runtimes, pytest.mark.slow]
TWO_PROCESSES = "--direct_num_workers=2 --direct_running_mode=multi_processing"


@pytest.mark.parametrize("runtime", ["onnx", "openvino", "litert", "openvino-int8"])
def test_a_runtime_resumes_after_kill_9_and_equals_beam(converted, xyz_area, tmp_path, runtime):
    pytest.importorskip("apache_beam", reason="the Beam engine needs the satx[beam] extra")
    from satx.predict.beam import predict_beam

    version, _ = converted
    root, tiles = xyz_area
    bbox = ",".join(map(str, BBOX))
    with TileServer(root) as server:
        args = (
            "satx.predict",
            f"--model={version}",
            f"--bbox={bbox}",
            "--zoom=18",
            f"--tiles={server.template}",
            "--tta=dihedral",
            f"--runtime={runtime}",
            "--chunk_size=4",
            "--batch_size=3",
            "--formats=csv,geojson",
        )
        kw = dict(bbox=BBOX, zoom=18, source=SourceConfig(tiles=server.template), tta="dihedral")
        kw.update(runtime=runtime, chunk_size=4, batch_size=3, formats=("csv", "geojson"))
        predict(PredictConfig.make(model=str(version), output=str(tmp_path / "clean"), **kw))
        killed = cli(
            *args,
            f"--output={tmp_path / 'killed'}",
            env={"SATX_FAILPOINTS": "predict.chunk_done:2"},
        )
        assert killed.returncode == -9, killed.stderr[-2000:]
        resumed = cli(*args, f"--output={tmp_path / 'killed'}", check=True)
        assert "resuming: 2 of" in resumed.stderr
        beam = PredictConfig.make(
            model=str(version),
            output=str(tmp_path / "beam"),
            engine="beam",
            beam_options=TWO_PROCESSES,
            **kw,
        )
        predict_beam(beam)
    same_outputs(tmp_path / "clean", tmp_path / "killed")
    same_outputs(tmp_path / "clean", tmp_path / "beam")
    run = json.loads((tmp_path / "beam" / "predict_run.json").read_text())
    assert run["runtime"] == runtime and run["scored"] == len(tiles) - 2
    assert len(predicted_rows(tmp_path / "clean")) == len(tiles) - 2
    other = cli(*args, f"--output={tmp_path / 'killed'}", "--runtime=tf")
    assert other.returncode == 2 and "another prediction run" in other.stderr
