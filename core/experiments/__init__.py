"""Multi-run studies behind the guided lessons, by topic: functions over the core (most over
``core.train.run``), plain NumPy numbers out, no UI.

* ``variance``     forward / backward variances per layer at init; learning-rate sweeps
* ``saturation``   quantiles of |activation| over training; the order layers saturate in
* ``deep_linear``  one deep linear config trained for many seeds (Orhan's degeneracy)
* ``spectra``      products of random matrices; Jacobian spectra at criticality
* ``warping``      a 2-D grid pushed through a deep random composition
* ``results``      what they return (plain dataclasses, no torch: a page unpickles them)
"""
