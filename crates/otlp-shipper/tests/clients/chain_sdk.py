"""The client of tests/e2e_chain.rs: the official Python `anthropic` SDK sends COUNT exchanges
through the proxy, streaming and not, with bodies from 100 B to 1.5 MB, one after the other.

Usage: python chain_sdk.py COUNT
The SDK reads ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY from the environment. Each exchange
carries its number in the header `x-chain-exchange`; the line `done N` is printed (flushed)
once the client has the whole answer, so the Rust test knows which exchanges completed.
"""

import sys

import anthropic

SIZES = [100, 2_000, 20_000, 50_000, 100_000, 50_000, 300_000, 5_000]


def size(n):
    # Every 16th exchange carries 1.5 MB, as a long Claude Code conversation does.
    return 1_500_000 if n % 16 == 7 else SIZES[n % len(SIZES)]


def main():
    count = int(sys.argv[1])
    # No retries: a failure must show as a failure, not as an extra record.
    client = anthropic.Anthropic(max_retries=0, timeout=60.0)
    for n in range(count):
        text = f"chain {n}: " + "x" * size(n)
        headers = {"x-chain-exchange": str(n)}
        messages = [{"role": "user", "content": text}]
        if n % 2:
            with client.messages.stream(
                model="claude-sonnet-4-6",
                max_tokens=64,
                messages=messages,
                extra_headers=headers,
            ) as stream:
                reply = "".join(stream.text_stream)
        else:
            msg = client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=64,
                messages=messages,
                extra_headers=headers,
            )
            reply = "".join(b.text for b in msg.content if b.type == "text")
        if f"chain {n}:" not in reply:
            print(f"bad reply to {n}: {reply[:80]!r}", file=sys.stderr)
            sys.exit(1)
        print(f"done {n}", flush=True)


if __name__ == "__main__":
    main()
