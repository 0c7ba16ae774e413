"""The CRL + distillation training stack that writes gatekit-run/1 checkpoints.

    from training import TrainConfig, train
    train(TrainConfig(epochs=5), "runs/teacher")
    train(TrainConfig(depth=4, epochs=5), "runs/student", teacher="runs/teacher@48000")
"""

from training.config import TrainConfig


def train(*args, **kwargs):
    from training.trainer import train as _train

    return _train(*args, **kwargs)


__all__ = ["TrainConfig", "train"]
