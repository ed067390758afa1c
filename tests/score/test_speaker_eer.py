"""Equal-error rate of verification trials and the trial list of a set of embeddings."""
import numpy as np
import pytest

from ttsrl.score.speaker import equal_error_rate, trial_scores


def test_separable_trials_have_no_errors():
    eer, thr = equal_error_rate([0.1, 0.2, 0.8, 0.9], [False, False, True, True])
    assert eer == 0.0 and 0.2 <= thr < 0.8


def test_eer_by_hand():
    # targets 0.3, 0.9; non-targets 0.1, 0.5. Thresholds in (0.3, 0.5]: one target rejected (FRR 1/2),
    # one non-target accepted (FAR 1/2): the rates cross at 1/2
    eer, _ = equal_error_rate([0.1, 0.3, 0.5, 0.9], [False, True, False, True])
    assert eer == pytest.approx(0.5)
    # 4 targets, 4 non-targets, one of each on the wrong side: 1/4
    eer, _ = equal_error_rate([0.9, 0.8, 0.7, 0.2, 0.1, 0.15, 0.3, 0.75],
                              [True, True, True, True, False, False, False, False])
    assert eer == pytest.approx(0.25)


def test_all_wrong_is_one_and_one_class_is_an_error():
    assert equal_error_rate([0.9, 0.1], [False, True])[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="target and non-target"):
        equal_error_rate([0.1, 0.2], [True, True])


def test_trial_scores():
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    scores, same = trial_scores(emb, ["a", "b", "a"])
    np.testing.assert_allclose(scores, [0.0, 1.0, 0.0])  # pairs (0,1) (0,2) (1,2)
    assert same.tolist() == [False, True, False]
