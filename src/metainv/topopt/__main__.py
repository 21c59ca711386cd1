"""Regenerate a tabulated lattice law: ``python -m metainv.topopt {truss,spinodoid}``.

See :mod:`metainv.topopt.lattices` (``--resolution``, ``--seeds`` for the spinodoid, ``--out``).
"""

from metainv.topopt.lattices import main

if __name__ == "__main__":
    main()
