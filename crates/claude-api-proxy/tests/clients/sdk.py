"""Drives the official Python `anthropic` SDK through the proxy, for tests/real_clients.rs.

Usage: python sdk.py create|gzip|count_tokens|stream|stream_tool|after_cuts
The SDK reads ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY from the environment. Prints one JSON
object on stdout with what the client saw, so the Rust test can compare it with the records.
"""

import json
import sys

import anthropic

MODEL = "claude-sonnet-4-6"
SYSTEM = "You are the real-client test of claude-api-logger. System prompt marker: sys-7f3a."
BASH_TOOL = {
    "name": "Bash",
    "description": "Runs a shell command and returns its output.",
    "input_schema": {
        "type": "object",
        "properties": {
            "command": {"type": "string"},
            "description": {"type": "string"},
        },
        "required": ["command"],
    },
}


def client():
    # No retries: a failure must show as a failure, not as an extra record.
    return anthropic.Anthropic(max_retries=0, timeout=30.0)


def create(text="sdk create: hello proxy"):
    msg = client().messages.create(
        model=MODEL,
        max_tokens=256,
        system=SYSTEM,
        messages=[{"role": "user", "content": text}],
    )
    return {
        "id": msg.id,
        "text": "".join(b.text for b in msg.content if b.type == "text"),
        "stop_reason": msg.stop_reason,
        "usage": {"input_tokens": msg.usage.input_tokens, "output_tokens": msg.usage.output_tokens},
    }


def gzip():
    # The fake compresses its answer; httpx accepts gzip and decodes it for the SDK.
    return create("sdk gzip: [[gzip]] hello proxy")


def count_tokens():
    result = client().messages.count_tokens(
        model=MODEL,
        system=SYSTEM,
        tools=[BASH_TOOL],
        messages=[{"role": "user", "content": "sdk count: how many tokens?"}],
    )
    return {"input_tokens": result.input_tokens}


def stream():
    events = []
    text = ""
    with client().messages.create(
        model=MODEL,
        max_tokens=256,
        system=SYSTEM,
        messages=[{"role": "user", "content": "sdk stream: hello proxy"}],
        stream=True,
    ) as s:
        for event in s:
            events.append(event.type)
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                text += event.delta.text
    return {"events": events, "text": text}


def stream_tool():
    c = client()
    messages = [{"role": "user", "content": "sdk tool: [[tool:Bash:echo sdk-tool-42]]"}]
    with c.messages.stream(
        model=MODEL, max_tokens=256, system=SYSTEM, tools=[BASH_TOOL], messages=messages
    ) as s:
        first = s.get_final_message()
    tool_uses = [b for b in first.content if b.type == "tool_use"]
    if not tool_uses:
        raise SystemExit(f"no tool_use in {first.model_dump_json()}")
    tool = tool_uses[0]
    messages.append({"role": "assistant", "content": [b.model_dump() for b in first.content]})
    messages.append(
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": tool.id, "content": "sdk-tool-42\n"}
            ],
        }
    )
    with c.messages.stream(
        model=MODEL, max_tokens=256, system=SYSTEM, tools=[BASH_TOOL], messages=messages
    ) as s:
        second = s.get_final_message()
    return {
        "tool_use": {"id": tool.id, "name": tool.name, "input": tool.input},
        "first_stop_reason": first.stop_reason,
        "text": "".join(b.text for b in second.content if b.type == "text"),
        "second_stop_reason": second.stop_reason,
    }


def after_cuts(rounds=20):
    # One client, so its kept-alive connection to the proxy is reused as Claude Code's is: each
    # round a request the upstream cuts mid-body (an error is expected), then one that must
    # succeed. No retries: a 502 the SDK would retry must show.
    c = client()
    ok, errors = 0, []
    for i in range(rounds):
        try:
            c.messages.create(
                model=MODEL, max_tokens=16, messages=[{"role": "user", "content": f"[[cut]] {i}"}]
            )
        except Exception:  # a cut body: a connection error, or JSON that does not parse
            pass
        try:
            c.messages.create(
                model=MODEL, max_tokens=16, messages=[{"role": "user", "content": f"after {i}"}]
            )
            ok += 1
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")
    return {"ok": ok, "errors": errors}


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    modes = {
        "create": create,
        "gzip": gzip,
        "count_tokens": count_tokens,
        "stream": stream,
        "stream_tool": stream_tool,
        "after_cuts": after_cuts,
    }
    if mode not in modes:
        raise SystemExit(f"usage: sdk.py {'|'.join(modes)}")
    print(json.dumps(modes[mode]()))
