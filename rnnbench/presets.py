"""Named sweep configurations: each is exactly a set of ``rnnbench sweep`` options.

``default`` is what a bare ``rnnbench sweep`` runs (about a minute on 2 cores);
the others are the documented benchmarks whose tables go into the README.
"""

from __future__ import annotations

PRESETS: dict[str, dict[str, object]] = {
    "default": {
        "cells": "gru,lstm,reluadd", "backends": "float,torch,onnxruntime",
        "seq_lens": "10,100", "hidden": "16,64,256", "batch": "1", "input_size": 16,
        "min_time": 0.2, "repeats": 5,
    },
    "cpu-compare": {
        "cells": "gru,lstm,reluadd", "backends": "float,torch,onnxruntime",
        "seq_lens": "100", "hidden": "16,64,256,1024", "batch": "1,32", "input_size": 16,
        "min_time": 1.0, "repeats": 15,
    },
    # Integer execution (issue 3): reluadd int8 should take <= 0.5x the time of GRU int8 at
    # H <= 256, and be no slower than float reluadd at H >= 256.
    "int-compare": {
        "cells": "gru,lstm,reluadd", "backends": "float,int8,int16,torch-int8",
        "seq_lens": "100", "hidden": "16,64,256,1024", "batch": "1", "input_size": 16,
        "min_time": 1.0, "repeats": 15,
    },
}
