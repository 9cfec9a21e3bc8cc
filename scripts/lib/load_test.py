# scripts/load-test's client: N concurrent streaming chat clients against an OpenAI-compatible
# server for D seconds. Client code uses asyncio with httpx2 (2.17.0, pinned in
# scripts/lib/serve-requirements.txt), the HTTP client the openai package itself runs on: no extra
# dependency, and unlike AsyncOpenAI it shows the raw SSE lines, so a stream that ends without
# `data: [DONE]`, a non-200 status and the time of each chunk are seen exactly.
import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path

import httpx2 as httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve_launch  # noqa: E402

PROMPTS = serve_launch.ROOT / "evals" / "benign.jsonl"


def load_prompts() -> list[list[dict]]:
    out = []
    for line in PROMPTS.read_text().splitlines():
        if line.strip():
            out.append(json.loads(line)["messages"])
    if not out:
        raise SystemExit(f"load-test: error: no prompts in {PROMPTS}")
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(-(-q * len(v) // 100)) - 1))
    return v[k]


async def one_request(client, url, body, timeout) -> dict:
    t0 = time.perf_counter()
    rec = {"ok": False, "ttft": None, "tokens": 0, "seconds": None, "error": None, "probity": False}
    content_chunks, usage_tokens, done, first, last = 0, None, False, None, None
    try:
        async with client.stream("POST", url, json=body, timeout=timeout) as r:
            if r.status_code != 200:
                text = (await r.aread()).decode(errors="replace")[:200]
                rec["error"] = f"HTTP {r.status_code}: {text}"
                return rec
            async for line in r.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                chunk = json.loads(data)
                if "probity" in chunk:
                    rec["probity"] = True
                if chunk.get("usage"):
                    usage_tokens = chunk["usage"].get("completion_tokens")
                for choice in chunk.get("choices") or []:
                    if (choice.get("delta") or {}).get("content"):
                        now = time.perf_counter()
                        content_chunks += 1
                        if first is None:
                            first = now
                            rec["ttft"] = now - t0
                        last = now
    except (httpx.HTTPError, json.JSONDecodeError, asyncio.TimeoutError) as e:
        rec["error"] = f"broken stream: {type(e).__name__}: {e}"[:200]
        return rec
    if not done:
        rec["error"] = "stream ended without data: [DONE]"
        return rec
    rec["seconds"] = time.perf_counter() - t0
    rec["tokens"] = usage_tokens if isinstance(usage_tokens, int) else content_chunks
    rec["token_source"] = "usage" if isinstance(usage_tokens, int) else "chunks"
    rec["decode_seconds"] = (last - first) if first is not None and last is not None else 0.0
    rec["ok"] = True
    return rec


async def client_loop(i, n, client, url, model, prompts, args, extension, stop_at, records):
    k = i
    while time.perf_counter() < stop_at:
        body = {"model": model, "messages": prompts[k % len(prompts)], "max_tokens": args.max_tokens,
                "temperature": 0, "seed": 1234, "stream": True, "stream_options": {"include_usage": True}}
        if extension is not None:
            body["probity"] = extension
        records.append(await one_request(client, url, body, args.request_timeout))
        k += n


async def run(base_url: str, args, extension) -> dict:
    prompts = load_prompts()
    limits = httpx.Limits(max_connections=args.clients + 4, max_keepalive_connections=args.clients + 4)
    async with httpx.AsyncClient(limits=limits, timeout=args.request_timeout) as client:
        r = await client.get(base_url + "/v1/models")
        if r.status_code != 200:
            raise SystemExit(f"load-test: error: GET {base_url}/v1/models answered {r.status_code}")
        models = r.json().get("data") or []
        model = args.model or (models[0]["id"] if models else "default")
        records: list[dict] = []
        t0 = time.perf_counter()
        stop_at = t0 + args.duration
        await asyncio.gather(*(client_loop(i, args.clients, client, base_url + "/v1/chat/completions", model,
                                           prompts, args, extension, stop_at, records)
                               for i in range(args.clients)))
        wall = time.perf_counter() - t0
    ok = [r for r in records if r["ok"]]
    errors = [r for r in records if not r["ok"]]
    ttft = [r["ttft"] for r in ok if r["ttft"] is not None]
    tokens = sum(r["tokens"] for r in ok)
    per_req = [r["tokens"] / r["seconds"] for r in ok if r["seconds"]]
    decode = [(r["tokens"] - 1) / r["decode_seconds"] for r in ok if r["tokens"] > 1 and r["decode_seconds"] > 0]
    kinds: dict[str, int] = {}
    for r in errors:
        key = r["error"].split(":")[0]
        kinds[key] = kinds.get(key, 0) + 1
    return {
        "base_url": base_url, "model": model, "clients": args.clients, "duration_seconds": args.duration,
        "max_tokens": args.max_tokens, "probity_extension": extension,
        "wall_seconds": wall, "requests": len(records), "completed": len(ok), "errors": len(errors),
        "error_kinds": kinds, "error_examples": [r["error"] for r in errors[:3]],
        "ttft_seconds": {"p50": pct(ttft, 50), "p99": pct(ttft, 99), "n": len(ttft)},
        "completion_tokens": tokens,
        "token_counts_from": sorted({r["token_source"] for r in ok}),
        "aggregate_tokens_per_second": tokens / wall if wall > 0 else None,
        "per_request_tokens_per_second": {"p50": pct(per_req, 50), "p1": pct(per_req, 1), "p99": pct(per_req, 99)},
        "per_request_decode_tokens_per_second": {"p50": pct(decode, 50)},
        "responses_with_probity": sum(1 for r in ok if r["probity"]),
        "cpu": cpu_model(), "nproc": os.cpu_count(),
    }


def report(res: dict, server_desc: str | None):
    f = lambda v, unit="": "n/a" if v is None else f"{v:.3f}{unit}"
    print(f"server: {server_desc or res['base_url']}  model: {res['model']}  cpu: {res['cpu']} ({res['nproc']} cores)")
    print(f"{res['clients']} streaming clients x {res['duration_seconds']} s, max_tokens {res['max_tokens']}, temperature 0"
          + (f", probity {json.dumps(res['probity_extension'])}" if res["probity_extension"] is not None else ""))
    print(f"requests {res['requests']}  completed {res['completed']}  errors {res['errors']} {res['error_kinds'] or ''}")
    for e in res["error_examples"]:
        print(f"  e.g. {e}")
    print(f"TTFT p50 {f(res['ttft_seconds']['p50'], ' s')}  p99 {f(res['ttft_seconds']['p99'], ' s')}")
    print(f"completion tokens {res['completion_tokens']} (from {'/'.join(res['token_counts_from']) or 'n/a'}) in "
          f"{res['wall_seconds']:.1f} s wall: aggregate {f(res['aggregate_tokens_per_second'], ' tok/s')}")
    p = res["per_request_tokens_per_second"]
    print(f"per request tok/s (tokens / request time) p50 {f(p['p50'])}  p1 {f(p['p1'])}  p99 {f(p['p99'])}; "
          f"decode tok/s after the first token p50 {f(res['per_request_decode_tokens_per_second']['p50'])}")
    if res["probity_extension"] is not None:
        print(f"responses carrying a probity object: {res['responses_with_probity']} of {res['completed']}")


def main():
    ap = argparse.ArgumentParser(prog="load-test", description="Concurrent streaming chat load against an OpenAI-compatible server.")
    ap.add_argument("base_url", nargs="?", help="server base URL, e.g. http://127.0.0.1:8080 (omit with --server)")
    ap.add_argument("--server", choices=["llama.cpp", "probity"], help="start this server on the default model, load it, stop it")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration", type=float, default=60, help="seconds during which clients start requests")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="server threads (--server)")
    ap.add_argument("--n-ctx", type=int, default=2048, help="llama.cpp context (--server llama.cpp)")
    ap.add_argument("--serve-arg", action="append", default=[], help="extra argument for `probity serve` (repeatable)")
    ap.add_argument("--model", help="model name to send (default: the first of /v1/models)")
    ap.add_argument("--probity-json", help="the probity extension object attached to every request")
    ap.add_argument("--request-timeout", type=float, default=300)
    ap.add_argument("--json", dest="json_out", help="also write the results to this file")
    args = ap.parse_args()

    def bad(msg):
        print(f"load-test: error: {msg}", file=sys.stderr)
        sys.exit(2)

    if (args.base_url is None) == (args.server is None):
        bad("give a base URL or --server llama.cpp|probity (one of them)")
    if args.clients < 1 or args.duration <= 0 or args.max_tokens < 1 or args.threads < 1:
        bad("--clients, --duration, --max-tokens and --threads must be positive")
    extension = None
    if args.probity_json is not None:
        try:
            extension = json.loads(args.probity_json)
        except json.JSONDecodeError as e:
            bad(f"--probity-json is not JSON: {e}")
        if not isinstance(extension, dict):
            bad("--probity-json must be a JSON object")

    if args.server:
        probity_args = ["--max-batch", str(args.clients), "--max-queue", str(max(64, 4 * args.clients)),
                        "--threads", str(args.threads), *args.serve_arg]
        try:
            server = serve_launch.start(args.server, threads=args.threads, n_ctx=args.n_ctx, probity_args=probity_args)
            with server:
                res = asyncio.run(run(server.base_url, args, extension))
                res["server_command"] = server.command
        except serve_launch.LaunchError as e:
            print(f"load-test: error: {e}", file=sys.stderr)
            sys.exit(1)
        desc = f"{args.server} ({' '.join(server.command)})"
    else:
        res = asyncio.run(run(args.base_url.rstrip("/"), args, extension))
        desc = None
    report(res, desc)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(res, indent=2) + "\n")
    sys.exit(1 if res["errors"] or res["completed"] == 0 else 0)


if __name__ == "__main__":
    main()
