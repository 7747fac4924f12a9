"""Align 3D Maps inside other workflow managers (hosts).

Each host is one small module that translates the host's inputs into an align3d job spec
(:mod:`.pairing`), runs ``align3d run`` on it (the command line and every host share one code
path), and declares the outputs in the host's own terms (:mod:`.outputs`):

* :mod:`.pipeliner_job`: a CCP-EM pipeliner job (``align3d.map_utilities.align_3d_maps``);
* :mod:`.relion_external`: a RELION External job (``align3d-relion-external``).

A third host (Scipion, CryoSPARC) needs only its own module: it says which file is which and
where it came from, and reads the outputs back from ``result.json``.
"""
