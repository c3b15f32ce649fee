"""GPU benchmarks and telemetry for kubedrill's GPU Job image (imports torch and pynvml only).

Run with ``python -m gpu_bench``. This package never imports kubedrill: the image that runs
it installs only ``kubedrill[gpu]``'s torch and nvidia-ml-py.
"""

__all__: list[str] = []
