"""The two-phase schedule shared by training and tuning."""

import pytest


def test_phase_segments_split_an_epoch_range():
    from satx.train.phases import phase_segments

    assert phase_segments(2, 0, 5) == [(1, 0, 2), (2, 2, 5)]
    assert phase_segments(2, 1, 2) == [(1, 1, 2)]
    assert phase_segments(2, 4, 6) == [(2, 4, 6)]  # a promoted Hyperband trial
    assert phase_segments(0, 0, 3) == [(2, 0, 3)]
    assert phase_segments(3, 0, 0) == []


def test_focal_gamma_down_weights_easy_tiles_and_is_a_flag_and_a_search_entry():
    import keras_tuner as kt
    import numpy as np

    from satx.config import SearchSpace, TrainConfig
    from satx.train.phases import make_loss
    from satx.tune.hypermodel import define_hparams

    truth = np.array([[0.0, 1.0], [0.0, 1.0]], np.float32)
    probs = np.array([[0.05, 0.95], [0.6, 0.4]], np.float32)  # an easy tile, a hard one
    plain = make_loss(TrainConfig())
    focal = make_loss(TrainConfig(focal_gamma=2.0))
    easy, hard = (float(focal(truth[i : i + 1], probs[i : i + 1])) for i in range(2))
    easy_ce, hard_ce = (float(plain(truth[i : i + 1], probs[i : i + 1])) for i in range(2))
    assert easy == pytest.approx(easy_ce * 0.05**2, rel=1e-4)
    assert hard == pytest.approx(hard_ce * 0.6**2, rel=1e-4)
    assert TrainConfig.leaves()["focal_gamma"].flag == "focal_gamma"
    space = SearchSpace(focal_gamma=(0.0, 2.0))
    hp = kt.HyperParameters()
    assert define_hparams(hp, space, ["mobilenetv2"])["focal_gamma"] == 0.0
    assert hp.space[-1].name == "focal_gamma" and list(hp.space[-1].values) == [0.0, 2.0]
