"""Figures of stiffness tensors (headless: matplotlib's Agg canvas, no pyplot state)."""

from metainv.viz.surface import elastic_surface, plane_section, plot_elastic_surface

__all__ = ["elastic_surface", "plane_section", "plot_elastic_surface"]
