"""Agents and rollouts: an RL environment over swebox sandboxes (SweEnv), tools and their
dialects, an LLM agent and a rule agent, resumable rollouts, trajectories and their exports.

    from swebox.agents import SweEnv, LLMAgent, LLMConfig
    with SweEnv(task, dialect="r2e") as env:
        traj = LLMAgent(LLMConfig(model="m", base_url="http://127.0.0.1:8000/v1")).run(env)
"""

from __future__ import annotations

from swebox.agents.actions import ToolCall, parse_action
from swebox.agents.dialects import DIALECTS, get_dialect
from swebox.agents.env import EpisodeLimits, Observation, RewardOptions, SweEnv
from swebox.agents.llm import LLMAgent, LLMConfig
from swebox.agents.remote_env import RemoteEnv
from swebox.agents.rollout import RolloutReport, run_rollouts
from swebox.agents.rule import RuleAgent
from swebox.agents.seat import PreparedState, Seat, SeatPool, fork_seats, open_seat
from swebox.agents.trajectory import Trajectory, read_trajectories

__all__ = ["DIALECTS", "EpisodeLimits", "LLMAgent", "LLMConfig", "Observation",
           "PreparedState", "RemoteEnv", "RewardOptions", "RolloutReport", "RuleAgent", "Seat",
           "SeatPool", "SweEnv", "ToolCall", "Trajectory", "fork_seats", "get_dialect",
           "open_seat", "parse_action", "read_trajectories", "run_rollouts"]
