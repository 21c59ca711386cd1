"""Watertight triangle meshes for printing: one strut-union mesher, one level-set mesher and one
float32-safe STL check, writer and vertex fix shared by every family's exporter and part writer.

Typical use::

    from metainv.mesh import levelset_mesh, strut_mesh, write_stl

    mesh = strut_mesh(nodes, struts, diameters, segments=8)   # cylinders + joint spheres
    part = levelset_mesh(field, spacing=0.1).mesh             # marching cubes, largest body
    write_stl(mesh, "part.stl")                               # atomic binary STL
"""

from metainv.mesh.levelset import (
    LevelSetMesh,
    box_function,
    count_bodies,
    fill_cavities,
    largest_body,
    levelset_mesh,
    shells,
)
from metainv.mesh.stl import (
    float32_collisions,
    is_watertight_stl,
    scaled_mesh,
    separate_coincident_vertices,
    stl_round_trip,
    write_stl,
)
from metainv.mesh.struts import (
    MESH_ATTEMPTS,
    strut_mesh,
    weld_nodes,
)

__all__ = [
    "MESH_ATTEMPTS",
    "LevelSetMesh",
    "box_function",
    "count_bodies",
    "fill_cavities",
    "float32_collisions",
    "is_watertight_stl",
    "largest_body",
    "levelset_mesh",
    "scaled_mesh",
    "separate_coincident_vertices",
    "shells",
    "stl_round_trip",
    "strut_mesh",
    "weld_nodes",
    "write_stl",
]
