"""NVML telemetry through a fake of our own adapter (gpu_bench.nvml.Nvml): there is no
driver here, and tests never fake pynvml or torch."""

from __future__ import annotations

import time
from typing import Any

from gpu_bench.burn import DeviceResult, _Nvml, next_duty
from gpu_bench.nvml import Health, Reading, open_nvml, reason_names
from gpu_bench.telemetry import Telemetry, health_delta, summarise


class FakeNvml:
    def __init__(self, *, util: float = 50.0, xids: list[tuple[str, int]] | None = None) -> None:
        self.util = util
        self.reads = 0
        self.health_calls = 0
        self.closed = False
        self._xids = list(xids or [])
        self.ecc_after = 0

    def driver(self) -> str:
        return "999.1"

    def count(self) -> int:
        return 1

    def handle(self, index: int | None = None, uuid: str | None = None) -> Any:
        return ("h", uuid if uuid is not None else index)

    def name(self, handle: Any) -> str:
        return "Fake H100"

    def read(self, handle: Any) -> Reading:
        self.reads += 1
        reasons = 0x4 if self.reads % 2 else 0x1
        if self.reads == 3:
            reasons |= 0x40  # one HW thermal slowdown
        return Reading(
            self.util, 30.0, 2**30, 80 * 2**30, 400.0, 60.0 + self.reads, 1980.0, reasons
        )

    def health(self, handle: Any) -> Health:
        self.health_calls += 1
        ecc = 0 if self.health_calls == 1 else self.ecc_after
        return Health(ecc, 0, 0, False, False)

    def watch_xids(self, handles: list[Any]) -> bool:
        return True

    def poll_xids(self) -> list[tuple[str, int]]:
        out, self._xids = self._xids, []
        return out

    def close(self) -> None:
        self.closed = True


def test_no_driver_is_a_clear_result() -> None:
    nvml, why = open_nvml()
    assert nvml is None and why is not None and why.startswith("no NVIDIA driver")
    tel = Telemetry({"cuda:0": 0})
    with tel:
        pass
    assert tel.doc == {"available": False, "reason": why}


def test_sampler_summarises_at_about_10_hz_and_compares_health() -> None:
    fake = FakeNvml(xids=[("GPU-1", 79)])
    fake.ecc_after = 2
    with Telemetry({"cuda:0": "GPU-1"}, interval_s=0.02, nvml=fake) as tel:
        time.sleep(0.25)
    doc = tel.doc
    assert doc["available"] is True and doc["driver"] == "999.1" and fake.closed
    d = doc["devices"]["cuda:0"]
    assert d["name"] == "Fake H100" and d["samples"] >= 5
    assert d["util_gpu_pct"] == {"mean": 50.0, "min": 50.0, "max": 50.0}
    assert d["power_w"]["max"] == 400.0 and d["temp_c"]["max"] > 60.0
    assert set(d["clock_reasons_seen"]) == {"gpu_idle", "sw_power_cap", "hw_thermal_slowdown"}
    assert d["throttled"] is True
    assert d["health"]["ecc_uncorrected_volatile_delta"] == 2
    assert d["health"]["problems"] == ["ecc_uncorrected_volatile +2"]
    assert doc["xid_events"] == [{"uuid": "GPU-1", "xid": 79}]


def test_default_interval_is_10_hz() -> None:
    fake = FakeNvml()
    with Telemetry({"cuda:0": 0}, nvml=fake) as tel:
        time.sleep(0.45)
    rate = tel.doc["devices"]["cuda:0"]["rate_hz"]
    assert rate is not None and 7 <= rate <= 11


def test_summary_and_health_of_nothing() -> None:
    s = summarise([])
    assert s["samples"] == 0 and s["util_gpu_pct"] is None and s["throttled"] is False
    h = health_delta(Health(None, None, None, None, None), Health(None, None, None, True, None))
    assert h["ecc_uncorrected_volatile_delta"] is None and h["problems"] == ["remap_pending"]
    assert reason_names(0x8 | 0x80) == ["hw_slowdown", "hw_power_brake_slowdown"]


def test_level_control_moves_toward_the_asked_utilisation() -> None:
    assert next_duty(0.5, 0.5, 50.0) == 0.5
    assert next_duty(0.5, 0.5, 30.0) > 0.5  # reads low: busier
    assert next_duty(0.9, 0.5, 100.0) < 0.9  # reads high: idler
    assert next_duty(0.03, 0.1, 100.0) == 0.02 and next_duty(0.99, 0.9, 0.0) == 1.0
    assert next_duty(0.7, 1.0, 10.0) == 1.0


class _Props:
    uuid = "1234"


class _Cuda:
    @staticmethod
    def get_device_properties(i: int) -> _Props:
        return _Props()


class _Torch:
    cuda = _Cuda


def test_burner_reads_nvml_through_the_adapter_and_corrects_its_duty() -> None:
    fake = FakeNvml(util=30.0)  # the device reads 30 % while 50 % is asked
    nv = _Nvml(_Torch(), [0], nvml=fake)
    res = {0: DeviceResult("0", target=0.5, duty=0.5)}
    for _ in range(4):
        nv.sample(res, 0.5)
    assert res[0].nvml_util == [30, 30, 30, 30]
    assert res[0].duty > 0.5
    s = res[0].summary()
    assert s["nvml_util_percent_mean"] == 30.0 and s["level_error_pts"] == 20.0
    nv.close()
    assert fake.closed
