"""The numerical core of align3d: arrays and voxel sizes in, a rigid transform and scores out.

It knows nothing of jobs, slots or files. Conventions: see :mod:`align3d.engine.alignment.geometry`.
Import each name from the module that defines it (``align3d.engine.alignment.align.align_maps``,
``align3d.engine.alignment.params.AlignmentParams``, ...): the package itself imports nothing, so that
reading the parameter model does not load the compiled kernels.
"""
