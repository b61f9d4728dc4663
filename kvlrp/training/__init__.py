"""Training C3D-family models on random clips (tf.data), with validation, checkpoints,
resume, seeded reproducibility and ``tf.distribute`` scale-out.
"""

from kvlrp.training.checks import ShardSummary, TrainingSetupError, check_shards
from kvlrp.training.config import TrainConfig
from kvlrp.training.evaluation import evaluate_clips
from kvlrp.training.strategy import STRATEGY_NAMES, is_chief, resolve_strategy
from kvlrp.training.train import TrainResult, train

__all__ = [
    "STRATEGY_NAMES",
    "ShardSummary",
    "TrainConfig",
    "TrainResult",
    "TrainingSetupError",
    "check_shards",
    "evaluate_clips",
    "is_chief",
    "resolve_strategy",
    "train",
]
