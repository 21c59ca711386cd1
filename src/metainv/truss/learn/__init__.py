"""Truss learning: forward and inverse networks, their data, training, evaluation, model
artifacts, design library and the inverse design of lattices for a target stiffness."""

from metainv.truss.learn.artifacts import TrussModels, load_models

__all__ = ["TrussModels", "load_models"]
