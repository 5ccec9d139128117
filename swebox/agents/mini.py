"""mini-swe-agent's trajectory format (`.traj.json`, "mini-swe-agent-1.1"), written from a
swebox trajectory so that mini-swe-agent's own viewers and scripts read swebox rollouts.

    {"info": {"exit_status", "submission", "model_stats": {"instance_cost", "api_calls"},
              "config": {...}},
     "messages": [system, user, assistant, tool | user, ..., {"role": "exit", ...}],
     "trajectory_format": "mini-swe-agent-1.1", "instance_id": ...}
"""

from __future__ import annotations

from typing import Any

from swebox import __version__
from swebox.agents.trajectory import Trajectory

FORMAT = "mini-swe-agent-1.1"
# swebox exit reasons -> mini-swe-agent's exit statuses (its exception class names)
EXIT_STATUS = {"submitted": "Submitted", "max_steps": "LimitsExceeded",
               "wall_time": "TimeExceeded", "model_error": "ModelError",
               "sandbox_error": "EnvironmentError", "closed": "Interrupted"}


def exit_status(reason: str | None) -> str:
    key = (reason or "").split(":")[0].split(";")[0].strip()
    return EXIT_STATUS.get(key, key or "Unknown")


def traj_json(t: Trajectory) -> dict[str, Any]:
    status = exit_status(t.exit_reason)
    messages: list[dict[str, Any]] = [dict(m) for m in t.messages]
    messages.append({"role": "exit", "content": t.patch,
                     "extra": {"exit_status": status, "submission": t.patch}})
    return {
        "info": {
            "model_stats": {"instance_cost": t.usage.cost, "api_calls": t.usage.calls},
            "config": {"agent_type": f"swebox.agents.{t.agent}", "model": {"model_name": t.model},
                       "environment_type": "swebox.agents.SweEnv", "dialect": t.dialect},
            "swebox_version": __version__,
            "exit_status": status,
            "submission": t.patch,
            "reward": t.reward,
            "verdict": t.verdict,
        },
        "messages": messages,
        "trajectory_format": FORMAT,
        "instance_id": t.instance_id,
    }
