"""A fake Dapr sidecar: the SDK's own gRPC DaprServicer plus the HTTP health endpoint.

It follows the pattern of the dapr/python-sdk tests (tests/clients/fake_dapr_server.py): a real
gRPC server speaking the runtime's protos, so the official client is exercised unchanged. It
records every publish request and can refuse on demand. The health endpoint runs in its own
thread because the SDK's client constructor probes it with blocking urllib on the event loop.

The HTTP port also serves service invocation (POST /v1.0/invoke/<app-id>/method/<method>, the
API the SDK's DaprClient uses by default): each call is recorded and forwarded, headers and body
as they came, to the ASGI app registered for the app id (`route_app`), on the test's event loop;
the callee's status, content type and body come back unchanged, as daprd passes them through. An
unknown app id, or a sidecar told to refuse, answers 500 ERR_DIRECT_INVOKE.

State stores (one dict per store name, see tests/fakes/state_store.py) answer GetState,
SaveState, DeleteState and QueryStateAlpha1 as daprd does for a JSON-capable store such as
state.postgresql v1: an etag per key, ABORTED on an etag mismatch, EQ/IN/AND/OR queries over
the entries saved with contentType application/json.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import re
import threading
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
import httpx
from dapr.proto.runtime.v1 import dapr_pb2_grpc, jobs_pb2, pubsub_pb2, state_pb2
from google.protobuf import empty_pb2
from google.protobuf.wrappers_pb2 import StringValue

from tests.fakes.state_store import FakeStateStore, StateRefused, StateRequest
from tests.support.servers import free_port

HEALTH_PATHS = frozenset({"/v1.0/healthz", "/v1.0/healthz/outbound"})
INVOKE_PATH = re.compile(r"^/v1\.0/invoke/(?P<app_id>[^/]+)/method/(?P<method>.+)$")
# headers daprd does not hand to the callee as they came
_HOP_HEADERS = frozenset({"host", "content-length", "connection", "dapr-api-token"})


@dataclass(frozen=True, slots=True)
class Published:
    """One event as the sidecar received it."""

    pubsub_name: str
    topic: str
    data: bytes
    data_content_type: str
    metadata: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass(frozen=True, slots=True)
class Invoked:
    """One service invocation as the sidecar received it."""

    app_id: str
    method: str
    data: bytes
    content_type: str
    http_verb: str
    headers: dict[str, str]  # lower-case names

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass(frozen=True, slots=True)
class JobRequest:
    """One Jobs API request as the sidecar received it: ScheduleJob or DeleteJob."""

    rpc: str
    name: str
    due_time: str = ""
    overwrite: bool = False
    data: Any = None  # the job's data, unpacked from its Any (a StringValue of JSON)


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    content_type: str
    body: bytes


class _Servicer(dapr_pb2_grpc.DaprServicer):
    def __init__(self, sidecar: FakeDaprSidecar) -> None:
        self._sidecar = sidecar

    async def PublishEvent(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> empty_pb2.Empty:
        await self._sidecar.refusal(context)
        self._sidecar.published.append(
            Published(
                request.pubsub_name,
                request.topic,
                bytes(request.data),
                request.data_content_type,
                dict(request.metadata),
            )
        )
        return empty_pb2.Empty()

    async def BulkPublishEvent(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        await self._sidecar.refusal(context)
        for entry in request.entries:
            self._sidecar.published.append(
                Published(
                    request.pubsub_name,
                    request.topic,
                    bytes(entry.event),
                    entry.content_type,
                    {**dict(request.metadata), **dict(entry.metadata)},
                )
            )
        return pubsub_pb2.BulkPublishResponse()

    async def GetState(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await self._sidecar.refusal(context)
        store = self._sidecar.state_store(request.store_name)
        asked = StateRequest("GetState", request.store_name, request.key)
        self._sidecar.state_requests.append(asked)
        entry = store.get(request.key)
        if entry is None:
            return state_pb2.GetStateResponse()
        return state_pb2.GetStateResponse(data=entry.value, etag=entry.etag)

    async def SaveState(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await self._sidecar.refusal(context)
        store = self._sidecar.state_store(request.store_name)
        for item in request.states:
            etag = item.etag.value if item.HasField("etag") else None
            first_write = item.HasField("options") and item.options.concurrency == 1
            self._sidecar.state_requests.append(
                StateRequest(
                    "SaveState",
                    request.store_name,
                    item.key,
                    etag=etag,
                    first_write=first_write,
                    metadata=dict(item.metadata),
                )
            )
            try:
                store.save(item.key, bytes(item.value), etag, first_write, dict(item.metadata))
            except StateRefused as refused:
                await context.abort(refused.code, refused.message)
        return empty_pb2.Empty()

    async def DeleteState(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await self._sidecar.refusal(context)
        store = self._sidecar.state_store(request.store_name)
        etag = request.etag.value if request.HasField("etag") else None
        self._sidecar.state_requests.append(
            StateRequest("DeleteState", request.store_name, request.key, etag=etag)
        )
        try:
            store.delete(request.key, etag)
        except StateRefused as refused:
            await context.abort(refused.code, refused.message)
        return empty_pb2.Empty()

    async def QueryStateAlpha1(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        await self._sidecar.refusal(context)
        store = self._sidecar.state_store(request.store_name)
        query = json.loads(request.query)
        self._sidecar.state_requests.append(
            StateRequest("QueryStateAlpha1", request.store_name, query=query)
        )
        try:
            found, token = store.query(query)
        except StateRefused as refused:
            await context.abort(refused.code, refused.message)
        return state_pb2.QueryStateResponse(
            results=[
                state_pb2.QueryStateItem(key=key, data=entry.value, etag=entry.etag)
                for key, entry in found
            ],
            token=token,
        )

    async def ScheduleJob(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await self._sidecar.refusal(context)
        if self._sidecar.refuse_jobs:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "fake scheduler refuses on purpose")
        job = request.job
        if job.name in self._sidecar.jobs and not request.overwrite:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, f"job {job.name} exists")
        data: Any = None
        if job.data.type_url:
            text = StringValue()
            job.data.Unpack(text)
            data = json.loads(text.value)
        scheduled = JobRequest("ScheduleJob", job.name, job.due_time, request.overwrite, data)
        self._sidecar.job_requests.append(scheduled)
        self._sidecar.jobs[job.name] = scheduled
        return jobs_pb2.ScheduleJobResponse()

    async def DeleteJob(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await self._sidecar.refusal(context)
        self._sidecar.job_requests.append(JobRequest("DeleteJob", request.name))
        if self._sidecar.jobs.pop(request.name, None) is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"job {request.name} not found")
        return jobs_pb2.DeleteJobResponse()


class _HealthHandler(http.server.BaseHTTPRequestHandler):
    sidecar: FakeDaprSidecar

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path not in HEALTH_PATHS:
            status = 404
        else:
            self.sidecar.health_probes += 1
            status = 204 if self.sidecar.healthy else 500
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        self._invoke("POST")

    def do_PUT(self) -> None:
        self._invoke("PUT")

    def _invoke(self, verb: str) -> None:
        match = INVOKE_PATH.match(self.path.split("?", 1)[0])
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if match is None:
            answer = _Answer(404, "application/json", b'{"errorCode":"ERR_NOT_FOUND"}')
        else:
            headers = {name.lower(): value for name, value in self.headers.items()}
            invoked = Invoked(
                match["app_id"],
                match["method"],
                data,
                headers.get("content-type", ""),
                verb,
                headers,
            )
            answer = self.sidecar.invoke_from_thread(invoked, self.path)
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeDaprSidecar:
    """A sidecar on two loopback ports that can be started, stopped and restarted in a test."""

    def __init__(self, grpc_port: int | None = None, http_port: int | None = None) -> None:
        self.grpc_port = grpc_port or free_port()
        self.http_port = http_port or free_port()
        self.published: list[Published] = []
        self.invoked: list[Invoked] = []
        self.jobs: dict[str, JobRequest] = {}  # the scheduler's jobs now, by name
        self.job_requests: list[JobRequest] = []
        self.apps: dict[str, Any] = {}  # app id -> ASGI app that invocations are forwarded to
        self.states: dict[str, FakeStateStore] = {}  # state store name -> its entries
        self.state_requests: list[StateRequest] = []
        self.refuse = False  # every publish answers UNAVAILABLE while set
        self.refuse_jobs = False  # ScheduleJob answers UNAVAILABLE while set (the rest works)
        self.healthy = True  # the health endpoint answers 204 while set, 500 otherwise
        self.health_probes = 0
        self.refused = 0
        self._fail_next = 0
        self._grpc: grpc.aio.Server | None = None
        self._http: http.server.ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def running(self) -> bool:
        return self._grpc is not None

    def state_store(self, name: str) -> FakeStateStore:
        """The entries of the state store `name` (created empty on first use)."""
        return self.states.setdefault(name, FakeStateStore())

    def fail_next(self, count: int) -> None:
        """Answer UNAVAILABLE to the next `count` requests (publish, jobs, state)."""
        self._fail_next = count

    async def refusal(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if self.refuse or self._fail_next > 0:
            self._fail_next = max(0, self._fail_next - 1)
            self.refused += 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "fake sidecar refuses on purpose")

    def route_app(self, app_id: str, app: Any) -> None:
        """Forward invocations of `app_id` to the ASGI `app`."""
        self.apps[app_id] = app

    def invoke_from_thread(self, invoked: Invoked, path: str) -> _Answer:
        """Record `invoked` and run it through its app on the test's loop (HTTP thread side)."""
        self.invoked.append(invoked)
        app = self.apps.get(invoked.app_id)
        if self.refuse or app is None or self._loop is None:
            self.refused += 1
            reason = "refused on purpose" if self.refuse else f"app id {invoked.app_id} not found"
            body = json.dumps({"errorCode": "ERR_DIRECT_INVOKE", "message": reason})
            return _Answer(500, "application/json", body.encode())
        forward = self._forward(app, invoked, path)
        return asyncio.run_coroutine_threadsafe(forward, self._loop).result(timeout=30)

    async def _forward(self, app: Any, invoked: Invoked, path: str) -> _Answer:
        _, _, query = path.partition("?")
        headers = {k: v for k, v in invoked.headers.items() if k not in _HOP_HEADERS}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://callee") as client:
            response = await client.request(
                invoked.http_verb,
                f"/{invoked.method}" + (f"?{query}" if query else ""),
                content=invoked.data,
                headers=headers,
            )
        return _Answer(
            response.status_code,
            response.headers.get("content-type", "application/octet-stream"),
            response.content,
        )

    def topics_for(self, task_id: str) -> list[tuple[str, str]]:
        """(topic, cloudevent.type) of every event published for `task_id`, in arrival order."""
        return [
            (p.topic, p.metadata["cloudevent.type"])
            for p in self.published
            if p.metadata.get("partitionKey") == task_id
        ]

    async def start(self) -> None:
        server = grpc.aio.server()
        dapr_pb2_grpc.add_DaprServicer_to_server(_Servicer(self), server)
        server.add_insecure_port(self.grpc_address)
        await server.start()
        self._grpc = server
        self._loop = asyncio.get_running_loop()
        handler = type("Health", (_HealthHandler,), {"sidecar": self})
        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", self.http_port), handler)
        self._http.daemon_threads = True
        self._http_thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._http_thread.start()

    async def stop(self) -> None:
        if self._grpc is not None:
            await self._grpc.stop(None)
            self._grpc = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._http_thread is not None:
            self._http_thread.join(timeout=5)
            self._http_thread = None
