"""Align 3D Maps: the job (:mod:`.job`), its parameters and slots, and the work it runs."""
