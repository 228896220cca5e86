"""Named sweep configurations: each is exactly a set of ``rnnbench sweep`` options.

A preset may list ``parts``: option sets merged over the preset's own, each expanded
into its own grid (e.g. one batch size per CKKS packing); ``params`` are ``--param`` values.

``default`` is what a bare ``rnnbench sweep`` runs (about a minute on 2 cores);
the others are the documented benchmarks whose tables go into the README.
"""

from __future__ import annotations

PRESETS: dict[str, dict[str, object]] = {
    "default": {
        "cells": "gru,lstm,reluadd", "backends": "float,torch,onnxruntime",
        "seq_lens": "10,100", "hidden": "16,64,256", "batch": "1", "input_size": 16,
        "min_time": 0.2, "repeats": 5, "warmup": 1,
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
    # CKKS costs seconds per step, so one timed sample after the accuracy run and no warm-up:
    # the SEAL operations have no JIT or cache to warm. Batch packing runs B = 8192 sequences
    # (every slot of a 16384 ring; reluadd's deeper step needs a 32768 ring, half full), the
    # amortised layout; vector packing runs one sequence, the latency layout.
    "ckks-compare": {
        "cells": "gru,lstm,reluadd", "backends": "ckks", "seq_lens": "1,5,20", "hidden": "8,16,32",
        "batch": "1", "input_size": 16, "min_time": 0.0001, "repeats": 1, "warmup": 0,
        "parts": [{"batch": "1", "params": ["ckks.packing=vector"]},
                  {"batch": "8192", "params": ["ckks.packing=batch"]}],
    },
    # TFHE (issue 11): one sequence, one encrypted run per point (key generation takes minutes
    # and gigabytes per circuit, reported in tfhe_keygen_s), both formulations at the default
    # widths (run with --timeout 3600). The step circuit is composable: compile and keys do not
    # grow with T. I = 8, the digits task's input: the widths are the ones that keep the digits
    # models accurate, and at I = 16, H = 4 reluadd's circuit has no parameters in Concrete.
    "tfhe-compare": {
        "cells": "gru,lstm,reluadd", "backends": "tfhe", "seq_lens": "1,4,16", "hidden": "4,8,16",
        "batch": "1", "input_size": 8, "min_time": 0.0001, "repeats": 1, "warmup": 0,
        "params": ["tfhe.form=literal,packed"],
    },
}
