"""Exports of trajectories.jsonl:

- `sft`: rows TRL's SFT trainer loads as a conversational dataset with tools: `messages`
  (assistant `tool_calls` with arguments as objects, typed by the tool's schema so that every
  row agrees on column types) and `tools` (the JSON schemas), as JSONL or parquet. Filters
  keep only what you want to learn from (resolved episodes, a minimum reward).
- `mini-swe-agent`: one `<instance_id>.traj.json` per episode (sample k > 0:
  `<instance_id>.<k>.traj.json`) in mini-swe-agent's trajectory format.
- `predictions`: SWE-bench predictions JSONL for `swebox eval`.

Everything streams: one trajectory in memory at a time (parquet is written in row groups).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from swebox.agents.trajectory import Trajectory, read_trajectories
from swebox.atomic import atomic_path
from swebox.errors import BadInput

FORMATS = ("sft", "mini-swe-agent", "predictions")


def _typed(value: Any, spec: dict[str, Any]) -> Any:
    """`value` as the schema type says (text actions arrive as strings)."""
    kind = spec.get("type")
    try:
        if kind == "integer" and isinstance(value, str):
            return int(value.strip())
        if kind == "number" and isinstance(value, (str, int)):
            return float(value)
        if kind == "boolean" and isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes")
        if kind == "array" and isinstance(value, str):
            loaded = json.loads(value)
            if isinstance(loaded, list):
                items = spec.get("items") or {}
                return [_typed(v, items) for v in loaded]
    except (ValueError, TypeError):
        return value
    return value


def sft_row(t: Trajectory) -> dict[str, Any]:
    props = {tool["function"]["name"]: tool["function"].get("parameters", {}).get(
        "properties", {}) for tool in t.tools if "function" in tool}
    messages: list[dict[str, Any]] = []
    for m in t.messages:
        out: dict[str, Any] = {"role": m["role"], "content": m.get("content") or ""}
        if m.get("tool_calls"):
            calls = []
            for tc in m["tool_calls"]:
                fn = tc["function"]
                raw = fn.get("arguments")
                try:
                    args = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
                except ValueError:
                    args = {"_unparsed": raw}  # a malformed call, kept as the model sent it
                if not isinstance(args, dict):
                    args = {"_unparsed": raw}
                spec = props.get(fn["name"], {})
                args = {k: _typed(v, spec.get(k, {})) for k, v in args.items()}
                calls.append({"type": "function",
                              "function": {"name": fn["name"], "arguments": args}})
            out["tool_calls"] = calls
        if m["role"] == "tool":
            out["name"] = m.get("name") or ""
            out["tool_call_id"] = m.get("tool_call_id") or ""
        messages.append(out)
    return {"messages": messages, "tools": t.tools, "instance_id": t.instance_id,
            "sample": t.sample, "reward": t.reward}


def _selected(src: Path, resolved_only: bool, min_reward: float | None
              ) -> Iterator[Trajectory]:
    for t in read_trajectories(src, strict=True):
        if resolved_only and not t.resolved:
            continue
        if min_reward is not None and t.reward < min_reward:
            continue
        yield t


def export(src: str | Path, fmt: str, dest: str | Path, *, resolved_only: bool = False,
           min_reward: float | None = None, parquet: bool | None = None) -> int:
    """Write `src`'s trajectories to `dest` in `fmt`; returns the number written."""
    src, dest = Path(src), Path(dest)
    if not src.is_file():
        raise BadInput(f"no trajectories file at {src}",
                       hint="point at a rollout's trajectories.jsonl")
    if fmt not in FORMATS:
        raise BadInput(f"unknown export format {fmt!r}", hint=f"choose one of {FORMATS}")
    rows = _selected(src, resolved_only, min_reward)
    if fmt == "mini-swe-agent":
        return _mini(rows, dest)
    if fmt == "predictions":
        return _jsonl(({"instance_id": t.instance_id,
                        "model_name_or_path": t.model or t.agent,
                        "model_patch": t.patch} for t in rows if t.sample == 0), dest)
    if parquet if parquet is not None else dest.suffix == ".parquet":
        return _parquet((sft_row(t) for t in rows), dest)
    return _jsonl((sft_row(t) for t in rows), dest)


def _jsonl(rows: Iterator[dict[str, Any]], dest: Path) -> int:
    dest.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with atomic_path(dest) as tmp, open(tmp, "wb") as f:
        for row in rows:
            f.write(orjson.dumps(row) + b"\n")
            n += 1
    return n


def _parquet(rows: Iterator[dict[str, Any]], dest: Path, batch: int = 256) -> int:
    """Parquet with the nested columns as Arrow infers them; `tools` and tool-call arguments
    vary in shape across rows, so each batch is unified against the first batch's schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    dest.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    buf: list[dict[str, Any]] = []
    with atomic_path(dest) as tmp:
        writer: pq.ParquetWriter | None = None
        try:
            def flush() -> None:
                nonlocal writer
                table = pa.Table.from_pylist([_as_json_columns(r) for r in buf])
                if writer is None:
                    writer = pq.ParquetWriter(str(tmp), table.schema)
                writer.write_table(table.cast(writer.schema))
                buf.clear()

            for row in rows:
                buf.append(row)
                n += 1
                if len(buf) >= batch:
                    flush()
            if buf or writer is None:
                flush()
        finally:
            if writer is not None:
                writer.close()
    return n


def _as_json_columns(row: dict[str, Any]) -> dict[str, Any]:
    """Parquet needs one schema for every row: the free-form parts (tool schemas, call
    arguments) are stored as JSON text there; JSONL keeps them as objects."""
    msgs = []
    for m in row["messages"]:
        m = dict(m)
        if "tool_calls" in m:
            m["tool_calls"] = [{"type": "function", "function": {
                "name": c["function"]["name"],
                "arguments": json.dumps(c["function"]["arguments"])}} for c in m["tool_calls"]]
        else:
            m["tool_calls"] = None
        m.setdefault("name", None)
        m.setdefault("tool_call_id", None)
        msgs.append(m)
    return {**row, "messages": msgs, "tools": json.dumps(row["tools"])}


def _mini(rows: Iterator[Trajectory], dest: Path) -> int:
    from swebox.agents.mini import traj_json

    dest.mkdir(parents=True, exist_ok=True)
    n = 0
    for t in rows:
        name = t.instance_id if t.sample == 0 else f"{t.instance_id}.{t.sample}"
        with atomic_path(dest / f"{name.replace('/', '__')}.traj.json") as tmp:
            tmp.write_text(json.dumps(traj_json(t), indent=2))
        n += 1
    return n
