"""Inside an app's namespaces: its volumes, its loopback, its published port, then its main.py.

`process` starts this module under `unshare --mount --net` (so it runs as root of a private
mount and network namespace), as `python -m fcapi.emulator.engine.sandbox`. It does what a
container runtime and the image's nginx do for an app: `/mnt/input` and `/mnt/output` become
the step's folders (bind mounts over a private tmpfs on /mnt, so nothing of the host's /mnt is
seen or touched), the namespace's loopback is brought up so the app's `localhost:5000` is its
own, and a Unix socket in the host's file system forwards to that port (the container's
published port: the controller cannot reach another namespace's loopback). Then it runs
`python -u main.py` in the app folder and exits with the app's status. Standard library only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import struct
import subprocess
import sys

APP_PORT = 5000
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL when its parent dies, so no app outlives its keeper."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def bring_up_loopback() -> None:
    """`ip link set lo up`, by ioctl: a fresh network namespace has its loopback down."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s, siocgifflags, ifr))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sh", b"lo", flags | iff_up))


def mount_volumes(input_dir: str, output_dir: str) -> None:
    """/mnt/input and /mnt/output bound to the step's folders, on a tmpfs private to us.

    The folders are opened first and bound through /proc/<pid>/fd, so a step folder that
    itself lies under /mnt is still reachable once the tmpfs hides the host's /mnt.
    """
    fds = [os.open(d, os.O_PATH | os.O_DIRECTORY) for d in (input_dir, output_dir)]
    os.makedirs("/mnt", exist_ok=True)
    _mount("-t", "tmpfs", "-o", "mode=0755", "fedstack-app", "/mnt")
    for fd, name in zip(fds, ("input", "output"), strict=True):
        os.mkdir(f"/mnt/{name}")
        _mount("--bind", f"/proc/{os.getpid()}/fd/{fd}", f"/mnt/{name}")
        os.close(fd)


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"sandbox: mount {' '.join(args)} failed: {done.stderr.strip()}")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()


async def _forward(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
    try:
        app_r, app_w = await asyncio.open_connection("127.0.0.1", APP_PORT)
    except OSError:  # the app is not listening yet: the caller sees the connection close
        client_w.close()
        return
    await asyncio.gather(_pipe(client_r, app_w), _pipe(app_r, client_w))


async def serve(sock_path: str, app: subprocess.Popen[bytes]) -> int:
    """Publish the app's port on `sock_path` until the app exits or we are told to stop."""
    server = await asyncio.start_unix_server(_forward, path=sock_path)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    exited = asyncio.ensure_future(asyncio.to_thread(app.wait))
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({exited, stopped}, return_when=asyncio.FIRST_COMPLETED)
    server.close()
    if app.poll() is None:
        app.terminate()
        try:
            await asyncio.wait_for(asyncio.shield(exited), 5)
        except TimeoutError:
            app.kill()
    code = await exited
    stopped.cancel()
    return code


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fcapi.emulator.engine.sandbox")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--socket", required=True)
    p.add_argument("--app-dir", required=True)
    p.add_argument("--python", required=True)
    args = p.parse_args(argv)
    mount_volumes(args.input, args.output)
    bring_up_loopback()
    sys.stdout.flush()
    app = subprocess.Popen(
        [args.python, "-u", "main.py"], cwd=args.app_dir, preexec_fn=die_with_parent
    )
    return asyncio.run(serve(args.socket, app))


if __name__ == "__main__":
    sys.exit(main())
