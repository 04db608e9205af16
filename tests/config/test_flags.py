"""Flags are made from the config dataclasses: one declaration per knob, nothing restated."""

import dataclasses

import pytest
from absl import flags
from absl.testing import flagsaver

from satx.cli.flags import config_from_flags, define_flags
from satx.config import (
    BenchConfig,
    Config,
    EvaluateConfig,
    PredictConfig,
    RecordsConfig,
    ReviewConfig,
    SourceConfig,
    TrainConfig,
    TuneConfig,
    knob,
)
from satx.errors import InputError


@dataclasses.dataclass(frozen=True)
class Inner(Config):
    demo_rate: float = knob(0.5, "A rate.")
    demo_sizes: tuple[float, ...] = knob((1.0, 2.0), "Two numbers.")


@dataclasses.dataclass(frozen=True)
class Demo(Config):
    demo_name: str = knob("a", "A name.")
    demo_mode: str = knob("x", "A mode.", choices=("x", "y"))
    demo_on: bool = knob(True, "A switch.")
    demo_count: int = knob(3, "A count.", flag="demo_n")
    demo_headers: tuple[str, ...] = knob((), "Repeatable.", repeat=True)
    demo_hidden: int = knob(0, "Set by the CLI.", flag=None)
    inner: Inner = dataclasses.field(default_factory=Inner)


define_flags(Demo)


def test_a_knob_becomes_a_typed_flag_with_its_default_help_and_choices():
    f = flags.FLAGS
    assert f["demo_n"].default == 3 and f["demo_n"].help == "A count."
    assert f["demo_mode"].parser.enum_values == ["x", "y"]
    assert f["demo_sizes"].default == ["1.0", "2.0"] and f["demo_rate"].default == 0.5
    assert "demo_hidden" not in f and "demo_count" not in f
    argv = ["prog", "--demo_n=7", "--nodemo_on", "--demo_sizes=3,4.5", "--demo_mode=y"]
    argv += ["--demo_headers=A: 1", "--demo_headers=B: 2"]
    with flagsaver.flagsaver():
        f(argv)
        config = config_from_flags(Demo, demo_hidden=9)
    assert config == Demo(
        demo_mode="y",
        demo_on=False,
        demo_count=7,
        demo_headers=("A: 1", "B: 2"),
        demo_hidden=9,
        inner=Inner(demo_sizes=(3.0, 4.5)),
    )
    with flagsaver.flagsaver():
        f(["prog", "--demo_sizes=3,x"])
        with pytest.raises(InputError, match=r"--demo_sizes=3,x: expected numbers"):
            config_from_flags(Demo)


def test_a_second_cli_module_reuses_an_equal_flag_and_refuses_a_different_one():
    define_flags(Demo)  # the same knobs again: nothing new, no error

    @dataclasses.dataclass(frozen=True)
    class Clash(Config):
        demo_rate: float = knob(0.7, "Another default.")

    with pytest.raises(TypeError, match="--demo_rate is defined twice"):
        define_flags(Clash)


def test_an_invalid_choice_is_one_clear_sentence():
    with pytest.raises(InputError, match="--demo_mode=z: choose one of x, y"):
        Demo(demo_mode="z")
    with pytest.raises(InputError, match="--formats=csv,shp: choose one of geojson, csv, jsonl"):
        PredictConfig.make(model="m", output="o", formats=("csv", "shp"))
    with pytest.raises(InputError, match="--strategy=multiworker: choose one of"):
        PredictConfig.make(model="m", output="o", strategy="multiworker")
    with pytest.raises(InputError, match=r"--chunk_size=0: must be at least 1"):
        PredictConfig.make(model="m", output="o", chunk_size=0)
    with pytest.raises(InputError, match=r"--fetch_timeout=0: must be above 0"):
        RecordsConfig(input="i", output="o", source=SourceConfig(fetch_timeout=0))
    with pytest.raises(InputError, match=r"--lr_phase1=0: must be above 0; --label_smoothing"):
        TrainConfig(label_smoothing=1.0, lr_phase1=0)


@pytest.mark.parametrize(
    "cls", [TuneConfig, RecordsConfig, EvaluateConfig, PredictConfig, ReviewConfig, BenchConfig]
)
def test_every_knob_says_what_it_means(cls):
    for name, leaf in cls.leaves().items():
        if leaf.flag is not None:
            assert len(leaf.help) >= 12, name
