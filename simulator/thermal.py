"""Lumped thermal RC network of a Jetson-class module: junctions, heat-sink plate, board.

Nodes: CPU clusters, GPU, AUX (SoC/CV lump), TTP (the heat-sink transfer plate) and board.
Each junction is a first-order lag onto the sink (tau ~20 s CPU/GPU, ~32 s AUX); the sink
(tau ~16 s) is cooled to ambient through natural convection plus fan airflow; the board
(tau ~5 min) warms from its own rails and the sink. Junctions use an exact exponential step,
sink and board an implicit Euler step, so any sample rate is stable.
"""

from __future__ import annotations

import numpy as np

from simulator.instance import InstanceParams

__all__ = ["NODES", "ThermalNetwork"]

NODES = ("cpu", "gpu", "aux", "ttp", "board")
#: Junction-to-sink resistance (°C/W) and time constant (s) of cpu, gpu, aux.
R_JUNCTION = np.array([[2.5], [2.0], [3.0]])
TAU_JUNCTION_S = np.array([[20.0], [20.0], [32.0]])
#: Sink-to-air conductance (W/°C): natural convection plus fan airflow at nominal full speed.
G_NATURAL = 0.30
G_FAN = 1.6
#: Sink time constant (s) against the air at full airflow.
TAU_SINK_S = 16.0
#: Board: to sink and to air (W/°C), time constant (s).
G_SINK_BOARD = 0.08
G_BOARD_AIR = 0.40
TAU_BOARD_S = 300.0


class ThermalNetwork:
    """Temperatures T (5, D) in °C, advanced one sample at a time."""

    def __init__(self, inst: InstanceParams, hz: float) -> None:
        dt = 1.0 / hz
        self.r = R_JUNCTION * inst.r_scale  # (3, D)
        self.g = 1.0 / self.r
        self.a = -np.expm1(-dt / (TAU_JUNCTION_S * inst.tau_scale))  # (3, D)
        self.g_nat = G_NATURAL * inst.air_scale  # (D,)
        self.g_fan = G_FAN * inst.air_scale  # (D,) at rpm fraction 1
        c_sink = TAU_SINK_S * inst.sink_scale * (self.g_nat + self.g_fan)
        self.k_sink = dt / c_sink  # (D,)
        self.kg = self.k_sink * self.g  # (3, D)
        self.k_sb = self.k_sink * G_SINK_BOARD
        self._den0 = 1.0 + self.k_sink * (self.g.sum(0) + G_SINK_BOARD)
        c_board = TAU_BOARD_S * inst.board_scale * (G_SINK_BOARD + G_BOARD_AIR)
        self.k_board = dt / c_board  # (D,)
        self.kb_sb = self.k_board * G_SINK_BOARD
        self.inv_board = 1.0 / (1.0 + self.k_board * (G_SINK_BOARD + G_BOARD_AIR))
        self.T = np.zeros((5, len(self.g_nat)))
        self.set_airflow(np.zeros(len(self.g_nat)))

    def set_airflow(self, rpm_frac: np.ndarray) -> None:
        """Fan speed as a fraction of nominal full speed (D,): sets the sink-to-air conductance."""
        self.g_air = self.g_nat + self.g_fan * rpm_frac
        self.k_air = self.k_sink * self.g_air
        self.inv_sink = 1.0 / (self._den0 + self.k_air)

    def board_drive(self, p_board: np.ndarray, amb: np.ndarray) -> np.ndarray:
        """The part of the board update known ahead of the loop (any shape broadcasting (D,))."""
        return self.k_board * (p_board + G_BOARD_AIR * amb)

    def steady_state(self, p3: np.ndarray, p_board: np.ndarray, amb: np.ndarray) -> None:
        """Set T to the equilibrium for constant junction power p3 (3, D) and board heat (D,)."""
        # sink: sum(p3) + g_sb (Tb - Ts) = g_air (Ts - amb); board: p_b + g_sb (Ts - Tb) = g_ba (Tb - amb)
        g_sb, g_ba, g_air = G_SINK_BOARD, G_BOARD_AIR, self.g_air
        p = p3.sum(0)
        a11, a12, b1 = g_air + g_sb, -g_sb, p + g_air * amb
        a21, a22, b2 = -g_sb, g_sb + g_ba, p_board + g_ba * amb
        det = a11 * a22 - a12 * a21
        ts = (b1 * a22 - a12 * b2) / det
        tb = (a11 * b2 - a21 * b1) / det
        self.T = np.concatenate([ts + p3 * self.r, ts[None], tb[None]])

    def advance(
        self, p3: np.ndarray, p_board_extra: np.ndarray, drive: np.ndarray, amb: np.ndarray
    ):
        """One sample.

        p3 (3, D): junction power (W); p_board_extra (D,): board heat (W) beyond what `drive`
        (from `board_drive`) already holds; amb (D,): ambient (°C).
        """
        T = self.T
        ts = T[3]
        T[:3] += self.a * (ts + p3 * self.r - T[:3])  # exact exponential step
        num = (self.kg * T[:3]).sum(0)
        num += ts
        num += self.k_air * amb
        num += self.k_sb * T[4]
        num *= self.inv_sink  # implicit Euler on the sink
        T[3] = num
        tb = T[4] + drive
        tb += self.k_board * p_board_extra
        tb += self.kb_sb * num
        tb *= self.inv_board  # implicit Euler on the board
        T[4] = tb
