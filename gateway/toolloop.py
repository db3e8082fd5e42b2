"""Server-side tool execution: the gateway runs its own tools for a request (workspace policy ``server`` mode).

For a request whose workspace policy says ``tool_execution_mode = "server"`` (gateway/request_workspace.py), the
gateway adds the workspace's tools (``tools_for_context``: the registry's and the MCP servers' the caller may use,
filtered by the policy) after the request's own, sends the request upstream through the ordinary pipeline (plan
-> admit -> open -> fold), and while the answer asks only for gateway tools (``stop_reason: tool_use``) it runs
them (``tool_invoke``: logged and counted), appends the assistant message and one user message with a
``tool_result`` per ``tool_use`` (``is_error`` for a failure; the result as JSON text, cut at
``LYNKR_TOOL_OUTPUT_MAX_BYTES``), and asks the model again.

- Limits: at most ``policy.max_steps`` model calls and ``policy.max_tool_calls`` tool calls per request. Once the
  next call would be the last one allowed, or no tool call is left, that call is sent with
  ``tool_choice: {"type": "none"}`` so the model answers in text (the tools stay listed: Anthropic refuses a
  history with tool_use blocks but no tools). Calls beyond the tool-call budget within one answer get an
  ``is_error`` result saying so. A model that asks for a gateway tool anyway gets its tool_use removed and a
  text note in its place. A policy with ``max_steps <= 1`` or ``max_tool_calls <= 0`` adds no tools at all.
- An answer with a tool_use of the client's own tools (Read, Bash ...) goes back to the client. If it also asks
  for gateway tools (one turn, both kinds), those tool_use blocks are removed from what the client receives and
  not run: the client can only answer its own tool_use ids, and every tool_use must be answered in the next
  message; the model sees its client calls and their results next turn and can ask for the gateway tool again.
- Metering: every model call is a step with its own ``Meter`` (admitted against rate limits and budgets like any
  request, billed with the usage its upstream reported: one usage record per call, same request_id). The client
  sees the final step's usage. Internal steps store no turn; the final step's turn holds the request's messages
  plus the gateway's internal turns (assistant tool_use, user tool_result) and the answer, when the policy's
  ``record_transcripts`` allows (``LYNKR_TRANSCRIPTS=false`` still wins).
- Errors: an upstream error (or a 429 from admission) at any step ends the request with that error; a tool's
  failure is only an ``is_error`` tool_result.

The HTTP side (JSON and SSE) is gateway/toolloop_response.py.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from django.conf import settings

from gateway import pipeline
from gateway.db import db_async
from gateway.errors import ApiError, GatewayError
from gateway.metering import Meter
from gateway.toolloop_blocks import (
    Block,
    progress_line,
    result_text,
    stopped_note,
    tool_result_block,
    tool_uses,
    tools_merge,
    without_gateway_uses,
)
from gateway.upstream import RequestContext, UpstreamStream
from workspace.info import ToolContext, WorkspaceInfo
from workspace.invoke import tool_invoke
from workspace.tools.registry import ToolSpec, tools_for_context

logger = logging.getLogger(__name__)

# As gateway/api.py: ~4 bytes per token, an estimate for admission and message_start, never a bill.
_BYTES_PER_TOKEN = 4


@dataclass(slots=True)
class Step:
    """One model call of the request."""

    number: int
    body: dict[str, Any]
    meter: Meter
    stream: UpstreamStream
    forced: bool  # sent with tool_choice none: a limit is reached


@dataclass(frozen=True, slots=True)
class LoopAnswer:
    message: dict[str, Any]  # what the client receives: the progress block first (when shown), then the answer
    step: Step  # the final step: its stream names the route, its meter has the rate-limit headers
    progress_blocks: int  # 0 or 1


@dataclass(slots=True)
class ToolLoop:
    ctx: RequestContext
    body: dict[str, Any]
    headers: Mapping[str, str]
    workspace: WorkspaceInfo
    on_progress: Callable[[str], None] | None = None  # a progress line, when the policy shows them
    message_id: str = field(default_factory=lambda: f"msg_{uuid.uuid4().hex[:24]}")
    tools: list[Block] = field(default_factory=list)
    gateway_names: frozenset[str] = frozenset()
    extra: list[Block] = field(default_factory=list)  # the gateway's internal turns, appended to the messages
    lines: list[str] = field(default_factory=list)
    tool_calls: int = 0
    _tools_bytes: int = 0
    _extra_bytes: int = 0

    @property
    def show_progress(self) -> bool:
        return self.workspace.policy.progress_lines

    async def prepare(self) -> None:
        """Look up the gateway's tools for this caller (MCP providers read the database: off the event loop)."""
        policy = self.workspace.policy
        if policy.max_steps <= 1 or policy.max_tool_calls <= 0:
            return  # no tool could ever run: the request goes as the client sent it
        context = self.tool_context()
        specs: list[ToolSpec] = await db_async(tools_for_context)(context)
        merged, names = tools_merge(self.body.get("tools"), [spec.as_anthropic_tool() for spec in specs])
        if names:
            self.tools, self.gateway_names = merged, names
            self._tools_bytes = len(orjson.dumps([t for t in merged if t.get("name") in names]))

    def tool_context(self) -> ToolContext:
        key = self.ctx.key
        return ToolContext(
            workspace=self.workspace, user_id=key.user_id, api_key_id=key.id, request_id=self.ctx.request_id
        )

    def _step_body(self, number: int) -> tuple[dict[str, Any], bool]:
        policy = self.workspace.policy
        body = dict(self.body)
        if not self.gateway_names:
            return body, False
        body["tools"] = self.tools
        if self.extra:
            body["messages"] = [*self.body.get("messages", []), *self.extra]
        forced = number > 1 and (number >= policy.max_steps or self.tool_calls >= policy.max_tool_calls)
        choice = body.get("tool_choice")
        if forced:
            body["tool_choice"] = {"type": "none"}
        elif number > 1 and isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
            # The client's "use a tool" was for its turn, which the first call answered; forcing it again on every
            # call would run tools until the limits.
            relaxed: dict[str, Any] = {"type": "auto"}
            if "disable_parallel_tool_use" in choice:
                relaxed["disable_parallel_tool_use"] = choice["disable_parallel_tool_use"]
            body["tool_choice"] = relaxed
        return body, forced

    async def open_step(self, number: int = 1) -> Step:
        """Plan, admit and open one model call. Raises its error (the request ends with it)."""
        body, forced = self._step_body(number)
        estimate = self.ctx.inbound.input_estimate + (self._tools_bytes + self._extra_bytes) // _BYTES_PER_TOKEN
        ctx = replace(self.ctx, attempts=[], inbound=replace(self.ctx.inbound, input_estimate=estimate))
        meter = Meter(ctx, body, self.headers, step=number, transcript=False)
        try:
            plan = await pipeline.messages_plan(ctx, body, self.headers)
            await meter.admit(plan.routes[0] if plan.routes else None)
            stream = await pipeline.messages_open(ctx, body, self.headers, plan)
        except GatewayError as exc:
            await self._finish_failed(meter, None, exc)
            raise
        except BaseException as exc:  # a disconnect (CancelledError) or a bug: still billed, reservations released
            await self._finish_failed(meter, None, ApiError(f"request ended before an answer: {type(exc).__name__}"))
            raise
        step = Step(number, body, meter, stream, forced)
        # Billed even if the answer is never read (a client gone before the loop folds it): then it is the last.
        stream.on_close = lambda: self._finish_failed(meter, stream, None)
        logger.info(
            "request_id=%s tool loop step=%d opened provider=%s tools=%d forced=%s",
            self.ctx.request_id, number, stream.route.provider.name, len(self.gateway_names), forced,
        )  # fmt: skip
        return step

    async def _finish_failed(self, meter: Meter, stream: UpstreamStream | None, error: GatewayError | None) -> None:
        """The request ends at this step without an answer: it is the last step, so it carries the turn."""
        meter.transcript = self.workspace.policy.record_transcripts
        await meter.finish(stream=stream, error=error)
        if error is not None:
            error.headers.update(meter.response_headers())

    async def _fold(self, step: Step) -> dict[str, Any]:
        step.stream.on_close = None  # from here this loop finishes the meter, with the answer or the error
        try:
            return await pipeline.messages_fold(step.stream)
        except GatewayError as exc:
            await self._finish_failed(step.meter, step.stream, exc)
            raise
        except BaseException:
            await self._finish_failed(step.meter, step.stream, None)
            raise

    async def run(self, first: Step) -> LoopAnswer:
        """Fold ``first`` and go on until an answer is for the client. Raises the error of a failed step."""
        step = first
        while True:
            message = await self._fold(step)
            content = list(message.get("content") or [])
            gateway, client = tool_uses(content, self.gateway_names)
            if not gateway or client or step.forced or message.get("stop_reason") != "tool_use":
                return await self._final(step, message, gateway, client)
            await step.meter.finish(stream=step.stream, message=message)  # an internal step: billed, no turn
            results = await self._run_tools(gateway)
            self.extra.append({"role": "assistant", "content": content})
            self.extra.append({"role": "user", "content": results})
            self._extra_bytes += len(orjson.dumps(self.extra[-2:]))
            step = await self.open_step(step.number + 1)

    async def _final(
        self, step: Step, message: dict[str, Any], gateway: list[Block], client: list[Block]
    ) -> LoopAnswer:
        content = list(message.get("content") or [])
        stop_reason = message.get("stop_reason")
        if gateway:
            content = without_gateway_uses(content, self.gateway_names)
            if not client:
                policy = self.workspace.policy
                content.append(
                    stopped_note(
                        [str(b.get("name")) for b in gateway],
                        limit=step.forced,
                        stop_reason=str(stop_reason),
                        policy=policy.name,
                        max_steps=policy.max_steps,
                        max_tool_calls=policy.max_tool_calls,
                    )
                )
                if stop_reason == "tool_use":
                    stop_reason = "end_turn"  # no tool_use is left for the client to answer
        progress: list[Block] = []
        if self.show_progress and self.lines:
            progress = [{"type": "text", "text": "".join(self.lines)}]
        final = {**message, "id": self.message_id, "content": [*progress, *content], "stop_reason": stop_reason}
        step.meter.transcript = self.workspace.policy.record_transcripts
        await step.meter.finish(stream=step.stream, message=final)
        logger.info(
            "request_id=%s tool loop done steps=%d tool_calls=%d stop_reason=%s",
            self.ctx.request_id, step.number, self.tool_calls, stop_reason,
        )  # fmt: skip
        return LoopAnswer(final, step, len(progress))

    async def _run_tools(self, uses: list[Block]) -> list[Block]:
        """One tool_result per tool_use, in order; tools run one after another (a later one may read what an
        earlier one wrote)."""
        policy = self.workspace.policy
        max_bytes: int = settings.LYNKR_TOOL_OUTPUT_MAX_BYTES
        context = self.tool_context()
        results: list[Block] = []
        for use in uses:
            name, arguments, use_id = str(use.get("name")), use.get("input"), str(use.get("id"))
            result: dict[str, Any] | None = None
            if self.tool_calls >= policy.max_tool_calls:
                error = f"not run: this request reached its limit of {policy.max_tool_calls} gateway tool calls"
            elif not isinstance(arguments, dict):
                self.tool_calls += 1
                error = f"invalid arguments for {name}: a JSON object is required"
            else:
                self.tool_calls += 1
                outcome = await tool_invoke(name=name, arguments=arguments, context=context)
                result, error = outcome.result, (outcome.error or "tool failed") if outcome.is_error else ""
            text = error or result_text(result)
            results.append(tool_result_block(use_id, text=text, is_error=bool(error), max_bytes=max_bytes))
            line = progress_line(name, arguments, result=result, error=error)
            self.lines.append(line)
            if self.show_progress and self.on_progress is not None:
                self.on_progress(line)
        return results
