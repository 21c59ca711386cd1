"""Truss lattices (Bastek et al. 2022): the seven cells, tessellated and superimposed, affinely
stretched and rotated, homogenized by periodic Timoshenko-beam FE, exported as watertight STL."""
