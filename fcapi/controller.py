"""A site's local FeatureCloud controller (`http://localhost:8000`, often through a tunnel).

The controller is what the website's JavaScript talks to from a browser, so uploads look like
the browser's: the raw file as the body, `Origin: https://featurecloud.ai`. Data files can be
large; they are streamed from disk in chunks and results are streamed to disk, so memory use
does not grow with the data. A download lands under a temporary name and is renamed when
complete: a file with the final name is always whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import IO

import httpx
from pydantic import TypeAdapter

from fcapi import DEFAULT_CONTROLLER_URL, USER_AGENT
from fcapi.backoff import RETRY, Again, Backoff, poll, retry
from fcapi.errors import FcError, TransportError, WaitTimeout, error_for_status
from fcapi.files import atomic_target
from fcapi.http import (
    Closing,
    bounded,
    describe_transport_error,
    error_detail,
    parse_body,
    tls_context,
)
from fcapi.models import LogEntry, ProjectRun

ORIGIN = "https://featurecloud.ai"
CHUNK = 1 << 20  # 1 MiB per read: large enough for throughput, small enough for memory
_RUNS = TypeAdapter(list[ProjectRun])
_LOGS = TypeAdapter(list[LogEntry])
#: quick polls while a controller starts: it answers within seconds or not at all
START_POLL = Backoff(base=0.1, factor=1.5, cap=2.0)


def result_name(project_id: int, run: int, step: int) -> str:
    """The controller's own name for a step's result zip."""
    return f"results_pr{project_id}_run{run}_step{step}.zip"


def log_name(project_id: int, run: int, step: int) -> str:
    return f"logs_pr{project_id}_run{run}_step{step}.txt"


def _target(dest: Path, default_name: str) -> Path:
    """`dest` itself, or `default_name` inside it when `dest` is a directory."""
    return dest / default_name if dest.is_dir() else dest


async def file_chunks(path: Path, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
    """The file's bytes, one chunk at a time, read off the event loop."""
    f: IO[bytes] = await asyncio.to_thread(path.open, "rb")
    try:
        while True:
            chunk = await asyncio.to_thread(f.read, chunk_size)
            if not chunk:
                return
            yield chunk
    finally:
        await asyncio.to_thread(f.close)


class ControllerClient(Closing):
    """One controller. It takes no authentication: whoever reaches its port may use it."""

    def __init__(
        self,
        base_url: str = DEFAULT_CONTROLLER_URL,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: Backoff = RETRY,
        attempts: int = 3,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry
        self.attempts = attempts
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            verify=tls_context(),
            headers={"User-Agent": USER_AGENT},
        )

    def __repr__(self) -> str:
        return f"ControllerClient(base_url={self.base_url!r})"

    @property
    def _who(self) -> str:
        return f"the controller at {self.base_url}"

    async def aclose(self) -> None:
        await self._client.aclose()

    def _error(self, response: httpx.Response, endpoint: str) -> FcError:
        detail = error_detail(response)
        return error_for_status(response.status_code, detail, endpoint=endpoint, user=None)

    def _transport_error(self, exc: httpx.TransportError, endpoint: str) -> TransportError:
        return TransportError(
            f"controller at {self.base_url} did not answer: {describe_transport_error(exc)}",
            endpoint=endpoint,
        )

    async def _get(
        self, path: str, params: Mapping[str, str | int] | None = None
    ) -> httpx.Response:
        """A GET with retries: reads are safe to repeat, and a tunnel may hiccup."""
        async with bounded(self._who, f"GET {path}"):
            return await retry(
                lambda: self._get_once(path, params),
                retry_on=lambda exc: isinstance(exc, Again),
                attempts=self.attempts,
                policy=self.retry,
            )

    async def _get_once(self, path: str, params: Mapping[str, str | int] | None) -> httpx.Response:
        endpoint = f"GET {path}"
        try:
            response = await self._client.get(path, params=params)
        except httpx.TransportError as exc:
            raise Again(self._transport_error(exc, endpoint)) from None
        if response.status_code >= 500:
            raise Again(self._error(response, endpoint))
        if response.status_code >= 400:
            raise self._error(response, endpoint)
        return response

    async def ping(self) -> bool:
        """Whether the controller answers now (one request, no retries)."""
        try:
            response = await self._client.get("/ping/")
        except httpx.TransportError:
            return False
        return response.status_code == 200

    async def wait_until_up(self, deadline: float, who: str) -> None:
        """Poll `/ping/` for up to `deadline` seconds; `who` names the site in the error."""
        try:
            await poll(
                self.ping,
                bool,
                seconds=deadline,
                what=f"the controller of {who} at {self.base_url} to answer /ping/",
                policy=START_POLL,
            )
        except WaitTimeout as exc:
            raise WaitTimeout(exc.message, endpoint="GET /ping/") from None

    async def _post_upload(
        self, params: dict[str, str | int], content: AsyncIterator[bytes] | bytes, size: int
    ) -> None:
        endpoint = "POST /file-upload/"
        headers = {
            "Origin": ORIGIN,
            "Accept": "application/json, text/plain, */*",
            "Content-Type": "application/octet-stream",
            # a fixed length, as a browser sends, instead of chunked transfer encoding
            "Content-Length": str(size),
        }
        try:
            async with bounded(self._who, endpoint):
                response = await self._client.post(
                    "/file-upload/", params=params, content=content, headers=headers
                )
        except httpx.TransportError as exc:
            raise self._transport_error(exc, endpoint) from None
        if response.status_code >= 400:
            raise self._error(response, endpoint)

    async def upload(self, project_id: int, path: Path | str, file_name: str | None = None) -> int:
        """Stream one file to the controller for a project; return the bytes sent.

        Not retried: the controller may have kept part of it, and the caller knows better
        whether to send it again.
        """
        path = Path(path)
        size = (await asyncio.to_thread(path.stat)).st_size
        sent = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal sent
            async for chunk in file_chunks(path):
                sent += len(chunk)
                yield chunk

        params: dict[str, str | int] = {
            "projectId": int(project_id),
            "fileName": file_name or path.name,
            "finalize": "",
            "consent": "",
        }
        await self._post_upload(params, body(), size)
        return sent

    async def finalize(self, project_id: int) -> None:
        """Tell the controller this site is done uploading ("Continue workflow")."""
        params: dict[str, str | int] = {
            "projectId": int(project_id),
            "fileName": "",
            "finalize": "true",
            "consent": "",
        }
        await self._post_upload(params, b"", 0)

    async def project_runs(self, project_id: int) -> list[ProjectRun]:
        """The project's runs on this controller, newest first."""
        r = await self._get("/project-runs/", {"projectId": int(project_id)})
        return parse_body(r, _RUNS, endpoint="GET /project-runs/", user=None)

    async def logs(self, from_line: int = 0) -> list[LogEntry]:
        r = await self._get("/logs/", {"from": int(from_line)})
        return parse_body(r, _LOGS, endpoint="GET /logs/", user=None)

    async def _download(self, path: str, params: dict[str, str | int], target: Path) -> Path:
        endpoint = f"GET {path}"
        with atomic_target(target, 0o644) as out:
            try:
                async with (
                    bounded(self._who, endpoint),
                    self._client.stream("GET", path, params=params) as response,
                ):
                    if response.status_code >= 400:
                        await response.aread()
                        raise self._error(response, endpoint)
                    async for chunk in response.aiter_bytes(CHUNK):
                        await asyncio.to_thread(out.write, chunk)
            except httpx.TransportError as exc:
                raise self._transport_error(exc, endpoint) from None
        return target

    async def download_result(self, project_id: int, run: int, step: int, dest: Path | str) -> Path:
        """Save a step's result zip at `dest` (a file, or a directory to put it in)."""
        pid, run, step = int(project_id), int(run), int(step)
        target = _target(Path(dest), result_name(pid, run, step))
        params: dict[str, str | int] = {"projectId": pid, "step": step, "run": run}
        return await self._download("/file-download/", params, target)

    async def download_log(self, project_id: int, run: int, step: int, dest: Path | str) -> Path:
        """Save a step's log at `dest` (a file, or a directory to put it in)."""
        pid, run, step = int(project_id), int(run), int(step)
        target = _target(Path(dest), log_name(pid, run, step))
        params: dict[str, str | int] = {"projectId": pid, "step": step, "run": run}
        return await self._download("/logs-download/", params, target)
