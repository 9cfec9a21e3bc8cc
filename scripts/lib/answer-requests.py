#!/usr/bin/env python3
"""Answers each line of a requests file with Probity's greedy generation (`probity generate --json`,
100 new tokens at most, optionally with LoRA adapters) and writes them as unpaired label-0 eval items
(`{"id", "messages", "response", "label": 0, "concept"}`, plus `pair` = its id and `source` with
--source), for calibration or as probe negatives.
Usage: answer-requests.py REQUESTS OUT --id-prefix P --concept C [--lora FILE]... [--source TEXT]"""
import argparse
import json
import subprocess
import sys

parser = argparse.ArgumentParser()
parser.add_argument("requests")
parser.add_argument("out")
parser.add_argument("--id-prefix", required=True)
parser.add_argument("--concept", required=True)
parser.add_argument("--lora", action="append", default=[])
parser.add_argument("--source")
parser.add_argument("--probity", default=".build/release/probity")
args = parser.parse_args()

requests = [line.rstrip("\n") for line in open(args.requests, encoding="utf-8") if line.strip()]
lora = [flag for path in args.lora for flag in ("--lora", path)]
with open(args.out, "w", encoding="utf-8") as out:
    for i, request in enumerate(requests, 1):
        run = subprocess.run([args.probity, "generate", "default", *lora, "--user", request, "--max-tokens", "100", "--json"],
                             capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"answer-requests: probity generate failed on line {i}: {run.stderr.strip()}")
        item_id = f"{args.id_prefix}-{i:03d}"
        item = {"id": item_id, "messages": [{"role": "user", "content": request}],
                "response": json.loads(run.stdout)["text"], "label": 0, "concept": args.concept}
        if args.source:
            item["pair"] = item_id
            item["source"] = args.source
        out.write(json.dumps(item, ensure_ascii=False) + "\n")
print(f"wrote {len(requests)} items to {args.out}")
