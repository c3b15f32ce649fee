"""Repository defaults for the scenarios; the kubedrill plugin itself loads via pytest11."""

collect_ignore = ["reports", "experiments", "benchmarks", "gpu_bench", "loadtests"]
