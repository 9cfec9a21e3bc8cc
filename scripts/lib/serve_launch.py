# Starts an OpenAI-compatible server on 127.0.0.1 for scripts/load-test and
# scripts/test-openai-client, waits until it answers, and stops it: llama-cpp-python's server
# (`python -m llama_cpp.server`) or `probity serve` from the release build. Standard library only.
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("PROBITY_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "probity")
DEFAULT_MODEL = CACHE / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
PROBITY = ROOT / ".build" / "release" / "probity"


class LaunchError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def llama_cpp_command(port: int, threads: int, n_ctx: int, model: Path = DEFAULT_MODEL) -> list[str]:
    """llama-cpp-python's server. It holds one llama.cpp context and serves one request at a time
    (requests queue on a lock; it has no parallel slots or continuous batching). By default a new
    request interrupts a streaming one (--interrupt_requests True: the stream gets an early [DONE]),
    so concurrent clients are measured with it off."""
    if not model.is_file():
        raise LaunchError(f"the default model is missing ({model}): run scripts/setup")
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
            "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
            "--n_threads_batch", str(threads), "--interrupt_requests", "False"]


def probity_command(port: int, extra: list[str]) -> list[str]:
    """`probity serve default` from the release build; fails clearly when the build or its `serve`
    subcommand is missing."""
    if not PROBITY.is_file():
        raise LaunchError(f"no release build at {PROBITY}: run `swift build -c release` first")
    probe = subprocess.run([str(PROBITY), "serve", "--help"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise LaunchError(f"{PROBITY} has no `serve` subcommand (`probity serve --help` exited "
                          f"{probe.returncode}: {(probe.stderr or probe.stdout).strip()[:300]})")
    return [str(PROBITY), "serve", "default", "--host", "127.0.0.1", "--port", str(port), *extra]


class Server:
    """A server process with its log in a temporary file; a context manager that stops it."""

    def __init__(self, command: list[str], port: int, name: str, ready_seconds: float = 180):
        self.command, self.port, self.name, self.ready_seconds = command, port, name, ready_seconds
        self.base_url = f"http://127.0.0.1:{port}"
        self.log = tempfile.NamedTemporaryFile(prefix=f"{name}-server-", suffix=".log", delete=False)
        self.proc = None

    def __enter__(self):
        print(f"starting {self.name}: {' '.join(self.command)}", file=sys.stderr)
        self.proc = subprocess.Popen(self.command, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=ROOT, start_new_session=True)
        deadline = time.monotonic() + self.ready_seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LaunchError(f"{self.name} exited with {self.proc.returncode} before it answered:\n{self.tail()}")
            for path in ("/health", "/v1/models"):
                try:
                    with urllib.request.urlopen(self.base_url + path, timeout=2) as r:
                        if r.status == 200:
                            print(f"{self.name} ready at {self.base_url} ({path})", file=sys.stderr)
                            return self
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.5)
        self.stop()
        raise LaunchError(f"{self.name} did not answer /health or /v1/models within {self.ready_seconds:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        self.log.flush()
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __exit__(self, *exc):
        self.stop()
        self.log.close()
        return False


def start(kind: str, threads: int = 2, n_ctx: int = 2048, probity_args: list[str] | None = None) -> Server:
    port = free_port()
    if kind == "llama.cpp":
        return Server(llama_cpp_command(port, threads, n_ctx), port, "llama.cpp")
    if kind == "probity":
        return Server(probity_command(port, probity_args or []), port, "probity")
    raise LaunchError(f"unknown server {kind!r} (expected llama.cpp or probity)")
