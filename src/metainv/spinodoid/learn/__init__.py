"""Spinodoid learning: the f-NN / i-NN networks, their data, training, evaluation and model
artifacts, and the inverse design of spinodoids for a target stiffness."""

from metainv.spinodoid.learn.artifacts import load_spinodoid_models
from metainv.spinodoid.learn.nets import SpinodoidModels

__all__ = ["SpinodoidModels", "load_spinodoid_models"]
