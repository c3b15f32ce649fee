"""Our own small NVML adapter (over nvidia-ml-py's ``pynvml``), so tests fake this
surface, never pynvml or torch.

:func:`open_nvml` returns ``(adapter, None)`` or ``(None, "no NVIDIA driver: …")``.
The real adapter (:class:`PynvmlAdapter`) was written to nvidia-ml-py 13.615.71's
signatures and has never run against a driver in this repository's CI.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "BAD_REASONS",
    "CLOCK_REASONS",
    "Health",
    "Nvml",
    "PynvmlAdapter",
    "Reading",
    "open_nvml",
    "reason_names",
]

# nvmlClocksEventReason* bits (pynvml 13.615.71 constants)
CLOCK_REASONS: dict[int, str] = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
BAD_REASONS = 0x8 | 0x20 | 0x40 | 0x80  # HW slowdown and thermal bits: a GPU in trouble


def reason_names(mask: int) -> list[str]:
    return [name for bit, name in CLOCK_REASONS.items() if mask & bit]


@dataclass(frozen=True, slots=True)
class Reading:
    """One telemetry sample of one device; a field NVML refused is None."""

    util_gpu_pct: float | None
    util_mem_pct: float | None  # memory-interface busy time, not capacity
    mem_used_bytes: int | None
    mem_total_bytes: int | None
    power_w: float | None
    temp_c: float | None
    sm_clock_mhz: float | None
    clock_reasons: int | None


@dataclass(frozen=True, slots=True)
class Health:
    """Counters compared before and after a run; None where the device does not say."""

    ecc_uncorrected_volatile: int | None
    remapped_correctable: int | None
    remapped_uncorrectable: int | None
    remap_pending: bool | None
    remap_failed: bool | None


class Nvml(Protocol):
    """What gpu_bench needs from NVML. ``handle`` is whatever :meth:`handle` returned."""

    def driver(self) -> str: ...
    def count(self) -> int: ...
    def handle(self, index: int | None = None, uuid: str | None = None) -> Any: ...
    def name(self, handle: Any) -> str: ...
    def read(self, handle: Any) -> Reading: ...
    def health(self, handle: Any) -> Health: ...
    def watch_xids(self, handles: list[Any]) -> bool: ...
    def poll_xids(self) -> list[tuple[str, int]]: ...
    def close(self) -> None: ...


class PynvmlAdapter:
    def __init__(self, pynvml: Any) -> None:
        self._n = pynvml
        self._events: Any = None

    def _try(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except self._n.NVMLError:
            return None

    def driver(self) -> str:
        return str(self._n.nvmlSystemGetDriverVersion())

    def count(self) -> int:
        return int(self._n.nvmlDeviceGetCount())

    def handle(self, index: int | None = None, uuid: str | None = None) -> Any:
        if uuid is not None:
            return self._n.nvmlDeviceGetHandleByUUID(
                uuid if uuid.startswith("GPU-") else f"GPU-{uuid}"
            )
        return self._n.nvmlDeviceGetHandleByIndex(int(index or 0))

    def name(self, handle: Any) -> str:
        return str(self._n.nvmlDeviceGetName(handle))

    def _reasons(self, h: Any) -> int | None:
        n = self._n
        try:
            return int(n.nvmlDeviceGetCurrentClocksEventReasons(h))
        except n.NVMLError_FunctionNotFound:  # driver older than the binding
            old = self._try(n.nvmlDeviceGetCurrentClocksThrottleReasons, h)
            return None if old is None else int(old)
        except n.NVMLError:
            return None

    def read(self, handle: Any) -> Reading:
        n, h = self._n, handle
        util = self._try(n.nvmlDeviceGetUtilizationRates, h)  # not supported on MIG
        mem = self._try(n.nvmlDeviceGetMemoryInfo, h)
        power = self._try(n.nvmlDeviceGetPowerUsage, h)  # mW
        temp = self._try(n.nvmlDeviceGetTemperatureV, h, n.NVML_TEMPERATURE_GPU)
        if temp is None:
            temp = self._try(n.nvmlDeviceGetTemperature, h, n.NVML_TEMPERATURE_GPU)
        sm = self._try(n.nvmlDeviceGetClockInfo, h, n.NVML_CLOCK_SM)
        return Reading(
            util_gpu_pct=None if util is None else float(util.gpu),
            util_mem_pct=None if util is None else float(util.memory),
            mem_used_bytes=None if mem is None else int(mem.used),
            mem_total_bytes=None if mem is None else int(mem.total),
            power_w=None if power is None else power / 1000.0,
            temp_c=None if temp is None else float(temp),
            sm_clock_mhz=None if sm is None else float(sm),
            clock_reasons=self._reasons(h),
        )

    def health(self, handle: Any) -> Health:
        n, h = self._n, handle
        ecc = self._try(
            n.nvmlDeviceGetTotalEccErrors,
            h,
            n.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
            n.NVML_VOLATILE_ECC,
        )
        rows = self._try(n.nvmlDeviceGetRemappedRows, h)  # (corr, unc, pending, failure)
        return Health(
            ecc_uncorrected_volatile=None if ecc is None else int(ecc),
            remapped_correctable=None if rows is None else int(rows[0]),
            remapped_uncorrectable=None if rows is None else int(rows[1]),
            remap_pending=None if rows is None else bool(rows[2]),
            remap_failed=None if rows is None else bool(rows[3]),
        )

    def watch_xids(self, handles: list[Any]) -> bool:
        n = self._n
        try:
            self._events = n.nvmlEventSetCreate()
            for h in handles:
                n.nvmlDeviceRegisterEvents(h, n.nvmlEventTypeXidCriticalError, self._events)
        except n.NVMLError:
            return False
        return True

    def poll_xids(self) -> list[tuple[str, int]]:
        """XID events waiting now (no blocking): (device UUID, xid)."""
        n, out = self._n, list[tuple[str, int]]()
        if self._events is None:
            return out
        while True:
            try:
                data = n.nvmlEventSetWait(self._events, 0)
            except n.NVMLError:  # NVMLError_Timeout: nothing waiting
                return out
            uuid = self._try(n.nvmlDeviceGetUUID, data.device)
            out.append((str(uuid), int(data.eventData)))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._events is not None:
                self._n.nvmlEventSetFree(self._events)
        with contextlib.suppress(Exception):
            self._n.nvmlShutdown()


def open_nvml() -> tuple[Nvml | None, str | None]:
    """The adapter after ``nvmlInit()``, or None and why: no nvidia-ml-py, or
    ``no NVIDIA driver: …`` (NVMLError_LibraryNotFound / DriverNotLoaded, …)."""
    try:
        import pynvml
    except ImportError as e:
        return None, f"nvidia-ml-py not installed ({e})"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:
        return None, f"no NVIDIA driver: NVML could not initialise ({type(e).__name__}: {e})"
    return PynvmlAdapter(pynvml), None
