"""Cubic B-splines for maps, trilinear interpolation for masks: compiled kernels (numba).

All kernels work in *index space*: a point is given as fractional voxel indices ``(ix, iy, iz)``
of an array indexed ``[z, y, x]``. Points outside the box ``[0, N - 1]`` on any axis give 0 (and a
zero gradient); taps that fall outside the box near the border use mirrored coefficients.

* :mod:`.prefilter`: the coefficients that make the spline interpolate the samples
  (Unser, Aldroubi & Eden, "B-spline signal processing", IEEE TSP 1993);
* :mod:`.basis`: the cubic B-spline weights and the value and gradient at one point;
* :mod:`.sample`: values at scattered points, and the Gauss-Newton sums of the refinement;
* :mod:`.affine`: resampling a whole map (cubic) or mask (trilinear) onto a new grid.

numba is used because these loops dominate the job: ``scipy.ndimage.affine_transform`` (cubic)
takes ~9 s for one 256^3 map on 2 cores, these kernels well under a second.
"""
