# scripts/test-openai-client's checks, driven by the official openai Python client (3.63.0): an
# OpenAI-compatible server answers chat and text completions, its stream concatenates to the
# non-streamed greedy text, and (unless --no-probity) the `probity` extension works: findings and
# interventions in the response and the final SSE chunk, steering changes the text, a bad edit is
# refused with a 400. Prints one line per check, then "N passed, N failed"; exit 0 when all pass.
import argparse
import re
import sys
import time
import urllib.request
from pathlib import Path

import openai

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve_launch  # noqa: E402

CHAT = [{"role": "user", "content": "What's a good way to keep basil fresh after buying it?"}]
# docs/features.md: clamping the dictionary's gold latent at 1.5x its max activation turns the
# answer to this question golden (rules/demo/gold.yaml).
STEER_CHAT = [{"role": "user", "content": "Where should I go on vacation this summer?"}]
DEFAULT_RULE = "sycophancy.effusive-agreement"
DEFAULT_STEER = {"action": "clamp", "feature": "smollm2-l15/gold", "value": "1.5x"}
SETTINGS = dict(max_tokens=32, temperature=0, seed=1234)


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def run(self, name, fn):
        try:
            detail = fn()
        except AssertionError as e:
            self.failed += 1
            print(f"FAIL {name}: {e}")
            return
        except openai.APIError as e:
            self.failed += 1
            print(f"FAIL {name}: the server answered {type(e).__name__}: {e}")
            return
        self.passed += 1
        print(f"ok   {name}" + (f" ({detail})" if detail else ""))


def extra(obj) -> dict:
    """Fields the openai types do not declare (such as `probity`)."""
    return getattr(obj, "model_extra", None) or {}


def stream_chat(client, model, messages, **kw):
    text, last_probity, finish, chunks = "", None, None, 0
    with client.chat.completions.create(model=model, messages=messages, stream=True, **SETTINGS, **kw) as stream:
        for chunk in stream:
            chunks += 1
            if "probity" in extra(chunk):
                last_probity = extra(chunk)["probity"]
            for c in chunk.choices:
                text += c.delta.content or ""
                finish = c.finish_reason or finish
    return text, finish, last_probity, chunks


def main():
    ap = argparse.ArgumentParser(prog="test-openai-client")
    ap.add_argument("base_url", nargs="?", help="server base URL, e.g. http://127.0.0.1:8080 (omit with --server)")
    ap.add_argument("--server", choices=["llama.cpp", "probity"], help="start this server on the default model, test it, stop it")
    ap.add_argument("--no-probity", action="store_true", help="leave out the probity extension's checks (any OpenAI-compatible server)")
    ap.add_argument("--rule", default=DEFAULT_RULE, help=f"a rule id the server loaded (default {DEFAULT_RULE})")
    ap.add_argument("--serve-arg", action="append", default=None,
                    help="argument for `probity serve` (repeatable; default: --rules rules/sycophancy.yaml)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if (args.base_url is None) == (args.server is None):
        print("test-openai-client: error: give a base URL or --server llama.cpp|probity (one of them)", file=sys.stderr)
        sys.exit(2)
    if args.server == "llama.cpp" and not args.no_probity:
        print("test-openai-client: llama.cpp's server has no probity extension: checking with --no-probity", file=sys.stderr)
        args.no_probity = True
    if args.server:
        serve_args = args.serve_arg if args.serve_arg is not None else ["--rules", "rules/sycophancy.yaml"]
        try:
            with serve_launch.start(args.server, threads=args.threads,
                                    probity_args=["--threads", str(args.threads), *serve_args]) as server:
                checks = run_checks(server.base_url, args)
        except serve_launch.LaunchError as e:
            print(f"test-openai-client: error: {e}", file=sys.stderr)
            sys.exit(1)
    else:
        checks = run_checks(args.base_url.rstrip("/"), args)
    print(f"{checks.passed} passed, {checks.failed} failed")
    sys.exit(0 if checks.failed == 0 and checks.passed > 0 else 1)


def run_checks(base_url, args) -> Checks:
    client = openai.OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0, timeout=300)
    checks = Checks()
    state = {}

    def models():
        ids = [m.id for m in client.models.list().data]
        assert ids, "GET /v1/models listed no model"
        state["model"] = ids[0]
        return f"model {ids[0]!r}"
    checks.run("GET /v1/models lists a model", models)
    model = state.get("model", "default")

    def chat():
        r = client.chat.completions.create(model=model, messages=CHAT, **SETTINGS)
        assert r.choices, "no choices"
        text = r.choices[0].message.content or ""
        assert text.strip(), "empty completion"
        assert r.choices[0].finish_reason in ("stop", "length"), f"finish_reason {r.choices[0].finish_reason!r}"
        assert r.usage and r.usage.completion_tokens > 0, f"usage {r.usage}"
        state["chat"] = text
        return f"{r.usage.completion_tokens} tokens: {text[:60]!r}"
    checks.run("chat completion", chat)

    def chat_stream():
        assert "chat" in state, "no non-streamed text to compare (the chat check failed)"
        text, finish, _, chunks = stream_chat(client, model, CHAT)
        assert finish in ("stop", "length"), f"no finish_reason in the stream (last {finish!r})"
        assert text == state["chat"], f"streamed text differs from the non-streamed greedy text:\n  stream {text!r}\n  whole  {state['chat']!r}"
        return f"{chunks} chunks"
    checks.run("streamed chat equals the non-streamed greedy text", chat_stream)

    def completion():
        r = client.completions.create(model=model, prompt="The capital of France is", **SETTINGS)
        whole = r.choices[0].text
        assert whole.strip(), "empty text completion"
        streamed = "".join(c.choices[0].text for c in client.completions.create(
            model=model, prompt="The capital of France is", stream=True, **SETTINGS) if c.choices)
        assert streamed == whole, f"streamed text completion differs:\n  stream {streamed!r}\n  whole  {whole!r}"
        return repr(whole[:60])
    checks.run("text completion, streamed and not", completion)

    if args.no_probity:
        print("skip probity extension checks (--no-probity)")
        return checks

    def probity_obj(resp, label):
        p = extra(resp).get("probity")
        assert isinstance(p, dict), f"{label}: the response has no probity object"
        assert isinstance(p.get("findings"), list), f"{label}: probity.findings is not a list: {p.get('findings')!r}"
        assert isinstance(p.get("interventions"), list), f"{label}: probity.interventions is not a list"
        assert isinstance(p.get("passed"), bool), f"{label}: probity.passed is not a boolean"
        assert isinstance(p.get("fail_on"), str), f"{label}: probity.fail_on is not a string"
        return p

    def unsteered():
        r = client.chat.completions.create(model=model, messages=STEER_CHAT, **SETTINGS,
                                           extra_body={"probity": {"rules": [args.rule]}})
        p = probity_obj(r, "unsteered")
        state["unsteered"] = r.choices[0].message.content or ""
        return f"{len(p['findings'])} findings, {len(p['interventions'])} interventions"
    checks.run(f"probity object with rule {args.rule}", unsteered)

    def steered():
        r = client.chat.completions.create(model=model, messages=STEER_CHAT, **SETTINGS,
                                           extra_body={"probity": {"rules": [args.rule], "steer": [DEFAULT_STEER]}})
        p = probity_obj(r, "steered")
        assert p["interventions"], "steering was asked but probity.interventions is empty"
        mine = [i for i in p["interventions"] if isinstance(i, dict) and i.get("source") == "request"]
        assert mine, f"no intervention with source 'request': {p['interventions']}"
        assert mine[0].get("positions_edited", 0) > 0, f"the request's edit changed no position: {mine[0]}"
        text = r.choices[0].message.content or ""
        assert "unsteered" in state, "no unsteered text to compare (the previous check failed)"
        assert text != state["unsteered"], f"steered text equals unsteered text: {text!r}"
        state["steered"] = text
        return f"{mine[0]['positions_edited']} positions edited: {text[:60]!r}"
    checks.run(f"steering edit {DEFAULT_STEER} changes the text", steered)

    def steered_stream():
        text, _, p, _ = stream_chat(client, model, STEER_CHAT,
                                    extra_body={"probity": {"rules": [args.rule], "steer": [DEFAULT_STEER]}})
        assert isinstance(p, dict), "no SSE chunk carried a probity object"
        assert isinstance(p.get("findings"), list) and p.get("interventions"), f"final chunk's probity object incomplete: {p}"
        assert "steered" in state and text == state["steered"], "streamed steered text differs from the non-streamed one"
        return f"{len(p['interventions'])} interventions in the final chunk"
    checks.run("streamed steering: the final chunk carries the probity object", steered_stream)

    def bad_edit():
        try:
            client.chat.completions.create(model=model, messages=CHAT, **SETTINGS, extra_body={
                "probity": {"steer": [{"action": "clamp", "feature": "no-such-pack/no-such-feature", "value": 1}]}})
        except openai.BadRequestError as e:
            return f"400: {str(e)[:80]}"
        raise AssertionError("a steering edit on an unknown pack was accepted (expected 400)")
    checks.run("unknown steering feature is refused with 400", bad_edit)

    def metric(name):
        with urllib.request.urlopen(base_url + "/metrics", timeout=30) as r:
            text = r.read().decode()
        m = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
        assert m, f"/metrics has no {name}"
        return float(m.group(1))

    def disconnect():
        # A client that closes its socket mid-stream: the server must stop generating at its next
        # token, and a cut request is not counted as a finished completion.
        before = metric("probity_completion_tokens_total")
        chunks = 0
        with client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Write a long story about a lighthouse keeper."}],
                                            stream=True, max_tokens=2000, temperature=0, seed=1234) as stream:
            for _ in stream:
                chunks += 1
                if chunks == 4:
                    break
        assert chunks == 4, f"the stream ended after {chunks} chunks, before the client left"
        closed = time.monotonic()
        while metric("probity_running_requests") > 0:
            assert time.monotonic() - closed < 10, "the generation still runs 10 s after its client closed the connection"
            time.sleep(0.02)
        after = metric("probity_completion_tokens_total")
        assert after == before, f"the cut request was counted as finished ({after - before:.0f} tokens)"
        return f"stopped {time.monotonic() - closed:.2f} s after the client closed its connection"
    checks.run("a client that closes its connection mid-stream cancels its generation", disconnect)
    return checks


if __name__ == "__main__":
    main()
