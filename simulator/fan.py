"""Fan control: PWM states with hysteresis on an estimated temperature, rpm lagging the PWM.

Like the Jetson `thermal-fan-est` zone, the estimate is a smoothed weighted mean of the CPU, GPU
and AUX temperatures, updated at the thermal governor's polling ticks. A state goes up when the
estimate passes its trip, down only when it falls a hysteresis band below the trip that raised
it, and never before a minimum dwell time, so the fan does not toggle. `jetson_clocks` pins the
fan at full speed. The rotor follows the PWM with a first-order lag.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from simulator.instance import InstanceParams

__all__ = ["FAN_PWM", "FanController"]

#: PWM of each state and the estimate (°C) that moves the fan up out of / down out of it.
FAN_PWM = np.array([0.0, 77.0, 128.0, 192.0, 255.0])
UP_C = np.array([48.0, 58.0, 66.0, 74.0, np.inf])
HYSTERESIS_C = 6.0
DOWN_C = np.concatenate([[-np.inf], UP_C[:-1] - HYSTERESIS_C])
EST_WEIGHTS = np.array([[0.4], [0.4], [0.2]])
EST_TAU_S = 4.0
MIN_DWELL_S = 4.0
RPM_FULL = 5000.0
RPM_TAU_S = 1.5
#: A tachometer cannot see a rotor slower than this: it reads 0.
RPM_FLOOR = 250.0


class FanController:
    """Per-device fan state, stepped at the thermal governor's polling ticks.

    The airflow seen by the loop follows the rotor at tick resolution; the reported rpm is the
    same lag evaluated per sample (`rotor`).
    """

    def __init__(self, inst: InstanceParams, pinned: np.ndarray, hz: float, tick_s: float) -> None:
        d = len(pinned)
        self.rpm_full = RPM_FULL * inst.fan_gain  # (D,)
        self.a_est = -np.expm1(-tick_s / EST_TAU_S)
        self.a_rpm_tick = -np.expm1(-tick_s / RPM_TAU_S)
        self.a_rpm = -np.expm1(-1.0 / (hz * RPM_TAU_S))
        self.zi: np.ndarray | None = None
        self.tick_s = tick_s
        self.floor_state = np.where(pinned, len(FAN_PWM) - 1, 0)
        self.state = self.floor_state.copy()  # (D,) int
        self.est = np.zeros(d)
        self.dwell = np.zeros(d)
        self.rpm = np.zeros(d)
        self.rpm_target = np.zeros(d)

    def settle(self, temps3: np.ndarray) -> np.ndarray:
        """Start in the state an already-running board would be in at these temperatures.

        Returns the rotor speed as a fraction of nominal full speed (D,).
        """
        self.est = (EST_WEIGHTS * temps3).sum(0)
        state = np.searchsorted(UP_C, self.est, side="right")
        self.state = np.maximum(np.minimum(state, len(FAN_PWM) - 1), self.floor_state)
        self.dwell[:] = MIN_DWELL_S
        self.rpm_target = FAN_PWM[self.state] / 255.0 * self.rpm_full
        self.rpm = self.rpm_target.copy()
        return self.rpm * (1.0 / RPM_FULL)

    def tick(self, temps3: np.ndarray) -> np.ndarray:
        """Update the estimate from temps3 (3, D), step the state by at most one, spin the rotor.

        Returns the rotor speed as a fraction of nominal full speed (D,), for the airflow.
        """
        self.est += self.a_est * ((EST_WEIGHTS * temps3).sum(0) - self.est)
        self.dwell += self.tick_s
        ready = self.dwell >= MIN_DWELL_S
        move = (self.est > UP_C[self.state]).astype(np.int64)
        move -= self.est < DOWN_C[self.state]
        move *= ready
        np.maximum(self.state + move, self.floor_state, out=self.state)
        self.dwell[move != 0] = 0.0
        self.rpm += self.a_rpm_tick * (self.rpm_target - self.rpm)
        self.rpm_target = FAN_PWM[self.state] / 255.0 * self.rpm_full
        return self.rpm * (1.0 / RPM_FULL)

    def rotor(self, state: np.ndarray) -> np.ndarray:
        """Per-sample rotor speed (D, n) in rpm following the PWM of the states (D, n) with lag."""
        target = FAN_PWM[state] * (self.rpm_full[:, None] / 255.0)
        if self.zi is None:
            self.zi = target[:, :1] * (1.0 - self.a_rpm)
        rpm, self.zi = lfilter([self.a_rpm], [1.0, self.a_rpm - 1.0], target, axis=1, zi=self.zi)
        return rpm
