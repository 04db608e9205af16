"""The two-phase schedule shared by training and tuning."""


def test_phase_segments_split_an_epoch_range():
    from satx.train.phases import phase_segments

    assert phase_segments(2, 0, 5) == [(1, 0, 2), (2, 2, 5)]
    assert phase_segments(2, 1, 2) == [(1, 1, 2)]
    assert phase_segments(2, 4, 6) == [(2, 4, 6)]  # a promoted Hyperband trial
    assert phase_segments(0, 0, 3) == [(2, 0, 3)]
    assert phase_segments(3, 0, 0) == []
