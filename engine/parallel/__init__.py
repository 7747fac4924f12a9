"""Run independent tasks (one per volume) serially, in local processes, or on a Dask cluster.

Results come back in task order and are the same numbers whatever the backend: every task is
deterministic, and the compiled kernels sum in a fixed order whatever their thread count.

* ``processes`` (the default): the main process and worker processes, as many in all as the
  cores allow and as fit in the available memory (an estimate of each task's peak from its box
  sizes); each gets ``cores // workers`` threads for numba, FFTs and BLAS, so the cores are not
  oversubscribed. A run forks its workers once, at its start (:func:`warm_workers`), and every
  job of the run reuses them; where a fork is not safe, a job spawns its own workers.
* ``dask``: tasks go to a Dask ``distributed`` scheduler (``tcp://HOST:PORT``, or ``local`` for
  a local cluster); files are read on the workers, so paths must be on a shared filesystem. A
  task whose worker dies is retried (twice), then the job fails with :class:`TaskFailed`.
"""
