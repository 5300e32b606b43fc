"""Compatibility shims for DeepLabCut's TensorFlow engine under numpy 2.

DLC's TensorFlow package imports ``imgaug``, which reads ``np.sctypes`` at import time;
numpy 2 removed that attribute. :func:`ensure_numpy_sctypes` puts back an equivalent
mapping. Call it before importing anything of ``deeplabcut.pose_estimation_tensorflow``.
"""

from __future__ import annotations

import numpy as np


def numpy_sctypes() -> dict[str, list[type]]:
    """The ``np.sctypes`` mapping of numpy 1.x, built from the types numpy 2 still has.

    Returns
    -------
    dict
        Keys ``int``, ``uint``, ``float``, ``complex``, ``others``.
    """
    return {
        "int": [np.int8, np.int16, np.int32, np.int64],
        "uint": [np.uint8, np.uint16, np.uint32, np.uint64],
        "float": [np.float16, np.float32, np.float64, np.longdouble],
        "complex": [np.complex64, np.complex128, np.clongdouble],
        "others": [bool, object, bytes, str, np.void],
    }


def ensure_numpy_sctypes() -> bool:
    """Restore ``np.sctypes`` when numpy no longer provides it (idempotent).

    Returns
    -------
    bool
        True when the attribute was added by this call, False when it already existed.
    """
    try:
        np.sctypes  # noqa: B018  (numpy 1.x: attribute exists; numpy 2 raises)
        return False
    except AttributeError:
        np.sctypes = numpy_sctypes()  # type: ignore[attr-defined]
        return True
