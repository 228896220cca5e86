"""Integer-quantized execution of the cells (backends ``int8`` and ``int16``).

- :mod:`.fixed`: rounding, saturation and the sigmoid/tanh tables, shared by both implementations;
- :mod:`.quantize`: weight quantization and calibration of the fixed-point scales;
- :mod:`.reference`: the integer cells in plain NumPy, the specification;
- :mod:`.kernels`: the compiled kernels, bit-exact against the reference;
- :mod:`.backend`: the ``int8`` / ``int16`` backends.
"""
