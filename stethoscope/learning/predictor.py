"""RoomModel: a trained estimator with what it needs to be used.

The same object predicts for the server, for ``stethoscope-evaluate`` and in
cross-validation, so that the figures a model is chosen by are the figures
of the code that serves it. It holds no I/O; the model store turns it into
a skops file plus a manifest and back (``to_manifest``/``from_manifest``).
"""

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import sklearn

from .features import DEAD_AWARE, Vocabulary, feature_matrix, imposters
from .hmm import Motion, filter_sequences, forward_filter

# The unknown floor of a model whose manifest predates it (trained before
# the trainer calibrated one): a top probability below one half leaves
# more probability on the other rooms together than on the top room, the
# uncalibrated reading of "more likely wrong than right". The next
# training replaces it with the floor calibrated on the site's data.
DEFAULT_UNKNOWN_FLOOR = 0.5


class RoomModel:
    """Room probabilities for readings, in the order of ``rooms``."""

    def __init__(
        self,
        estimator: Any,
        *,
        algorithm: str,
        vocabulary: Vocabulary,
        feature_set: str,
        rooms: Sequence[str],
        class_prior: Sequence[float],
        motion: Motion,
        unknown_floor: float = DEFAULT_UNKNOWN_FLOOR,
    ):
        self.estimator = estimator
        self.unknown_floor = float(unknown_floor)
        self.algorithm = algorithm
        self.vocabulary = vocabulary
        self.feature_set = feature_set
        self.rooms = tuple(rooms)
        self.class_prior = np.asarray(class_prior, dtype=float)
        self.motion = motion
        classes = [str(room) for room in getattr(estimator, "classes_", ())]
        missing = set(classes) - set(self.rooms)
        if missing:
            raise ValueError(f"the estimator knows rooms the model does not: {missing}")
        # The estimator's columns, placed among the model's rooms (a fold of
        # cross-validation may lack a room; its probability is then 0).
        self._columns = np.asarray([self.rooms.index(room) for room in classes])

    @property
    def knows_dead_beacons(self) -> bool:
        """Whether the model was trained to tell a dead beacon from one not
        heard (otherwise a dead beacon is given to it as not heard)."""
        return self.feature_set in DEAD_AWARE

    def features(
        self, readings: Sequence[Mapping[str, int]], dead: Collection[str] = ()
    ) -> np.ndarray:
        return feature_matrix(readings, self.vocabulary, self.feature_set, dead)

    def predict_proba(
        self, readings: Sequence[Mapping[str, int]], dead: Collection[str] = ()
    ) -> np.ndarray:
        """(n, rooms) probabilities, one row per reading (``{beacon: rssi}``),
        the vocabulary beacons in ``dead`` taken as dead in every reading."""
        return self.predict_proba_features(self.features(readings, dead))

    def predict_proba_features(self, features: np.ndarray) -> np.ndarray:
        out = np.zeros((len(features), len(self.rooms)))
        if len(features):
            # Our own feature matrix, finite by construction: scikit-learn's
            # per-call checks of it and of the estimators' parameters were
            # about half of predicting the row or two a live request brings
            # (docs/benchmarks.md "Locating speed"). The numbers are the same.
            with sklearn.config_context(
                assume_finite=True, skip_parameter_validation=True
            ):
                out[:, self._columns] = self.estimator.predict_proba(features)
        return out

    def smooth(self, probabilities: np.ndarray, seconds: np.ndarray, **state):
        """Forward-filter one badge's probabilities in time order."""
        return forward_filter(
            probabilities, seconds, self.class_prior, self.motion, **state
        )

    def smooth_sequences(self, probabilities, seconds, badges) -> np.ndarray:
        """Forward-filter each badge's rows in time order; rows stay in place."""
        return filter_sequences(
            probabilities,
            np.asarray(seconds, dtype=float),
            badges,
            self.class_prior,
            self.motion,
        )

    def imposters(self, reading: Mapping[str, int]) -> list[str]:
        return imposters(reading, self.vocabulary)

    def to_manifest(self) -> dict:
        """What, besides the estimator, the store must keep (JSON)."""
        return {
            "algorithm": self.algorithm,
            "feature_set": self.feature_set,
            "vocabulary": self.vocabulary.as_json(),
            "rooms": list(self.rooms),
            "class_prior": [float(p) for p in self.class_prior],
            "motion": self.motion.as_json(),
            "unknown_floor": self.unknown_floor,
        }

    @classmethod
    def from_manifest(cls, estimator: Any, manifest: Mapping) -> "RoomModel":
        """The model again, from a loaded estimator and ``to_manifest()``."""
        return cls(
            estimator,
            algorithm=manifest["algorithm"],
            vocabulary=Vocabulary.from_json(manifest["vocabulary"]),
            feature_set=manifest["feature_set"],
            rooms=manifest["rooms"],
            class_prior=manifest["class_prior"],
            motion=Motion.from_json(manifest["motion"]),
            unknown_floor=manifest.get("unknown_floor", DEFAULT_UNKNOWN_FLOOR),
        )
