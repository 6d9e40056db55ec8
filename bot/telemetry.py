"""What this process counts for GET /metrics and GET /healthz, kept cheap for the hot path.

One `Telemetry` per process (the App's, shared by the inbox, the delivery worker, the
channels and the FAQ): Prometheus counters and a histogram in a registry of its own, and
the moment each channel last heard from its platform. Labels are channels, message kinds,
failure classes and FAQ outcomes only: never a user id, a chat id or a text, so nothing
here can hold personal data.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Seconds from an update reaching the bot to the platform accepting the first reply.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# The FAQ's verdicts (handlers.faq.service) as the metric names them.
FAQ_OUTCOMES = {"answer": "answered", "suggest": "suggested"}
# Replies waiting for their latency to be measured, at most (the oldest are forgotten:
# rows sent by another process, or expired, never come back here).
MAX_AWAITING = 10_000


class ChannelBeat:
    """When a channel last heard from its platform (a poll that answered, a webhook)."""

    __slots__ = ("expect_within", "last_ok", "mode", "since")

    def __init__(self, mode: str, expect_within: float | None) -> None:
        self.mode = mode
        # A poller hears at least every polling timeout; a webhook only when parents write.
        self.expect_within = expect_within
        self.since = time.time()
        self.last_ok: float | None = None


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.updates_in = Counter(
            "navbot_updates_in",
            "Updates received and stored, by messenger",
            ["channel"],
            registry=r,
        )
        self.replies_out = Counter(
            "navbot_replies_out",
            "Messages the platform accepted, by messenger and kind "
            "(reply, notice, reminder, campaign, operator)",
            ["channel", "kind"],
            registry=r,
        )
        self.reply_latency = Histogram(
            "navbot_reply_latency_seconds",
            "From an update reaching the bot to the platform accepting the first reply to it",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.delivery_failures = Counter(
            "navbot_delivery_failures",
            "Messages not delivered, by reason: unreachable (blocked the bot), rejected "
            "(refused by the platform), flood_control (did not end), temporary (retries "
            "exhausted), expired (a reply too old to send)",
            ["channel", "reason"],
            registry=r,
        )
        self.delivery_retries = Counter(
            "navbot_delivery_retries",
            "Sends tried again: flood_control (429 / too many requests) or temporary "
            "(5xx, timeouts, connection errors)",
            ["channel", "reason"],
            registry=r,
        )
        self.faq_questions = Counter(
            "navbot_faq_questions",
            "Free-text questions by the FAQ's outcome: answered, suggested, unanswered",
            ["outcome"],
            registry=r,
        )
        # Read from the database at each scrape (the same for every process of a deployment).
        self.outbox_backlog = Gauge(
            "navbot_outbox_backlog",
            "Messages waiting to be sent, by messenger",
            ["channel"],
            registry=r,
        )
        self.outbox_oldest = Gauge(
            "navbot_outbox_oldest_seconds",
            "Age of the oldest message waiting to be sent, by messenger",
            ["channel"],
            registry=r,
        )
        self.inbox_backlog = Gauge(
            "navbot_inbox_backlog", "Updates stored and not yet handled", registry=r
        )
        self.reminder_backlog = Gauge(
            "navbot_reminder_backlog",
            "Reminders due and not yet moved to the outbox (outside the daytime window they "
            "wait for the morning)",
            registry=r,
        )
        self.handoff_queue = Gauge(
            "navbot_handoff_queue_length",
            "Conversations waiting in the operators' queue",
            registry=r,
        )
        self.channel_age = Gauge(
            "navbot_channel_last_ok_seconds",
            "Seconds since the messenger last answered this process's poll or sent a webhook",
            ["channel"],
            registry=r,
        )
        self.channels: dict[str, ChannelBeat] = {}
        self._awaiting: dict[int, tuple[str, float]] = {}
        # The labelled children of the hot-path metrics, looked up once per label set.
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # -- channels --------------------------------------------------------------------
    def channel_started(self, channel: str, mode: str, expect_within: float | None) -> None:
        self.channels[channel] = ChannelBeat(mode, expect_within)

    def heard(self, channel: str) -> None:
        """The platform answered a poll, or pushed a webhook (any thread may call this)."""
        beat = self.channels.get(channel)
        if beat is None:
            beat = self.channels[channel] = ChannelBeat("webhook", None)
        beat.last_ok = time.time()

    # -- messages ----------------------------------------------------------------------
    def received(self, channel: str, count: int) -> None:
        if count:
            self._child(self.updates_in, channel).inc(count)

    def awaiting_reply(self, transcript_id: int | None, channel: str, since: float) -> None:
        """The first reply to an update received at `since` (epoch seconds) is this row."""
        if transcript_id is None:
            return
        if len(self._awaiting) >= MAX_AWAITING:
            self._awaiting.pop(next(iter(self._awaiting)))
        self._awaiting[transcript_id] = (channel, since)

    def sent(self, channel: str, kind: str | None, transcript_id: int | None) -> None:
        self._child(self.replies_out, channel, kind or "reply").inc()
        waiting = self._awaiting.pop(transcript_id, None) if transcript_id is not None else None
        if waiting is not None:
            latency = max(0.0, time.time() - waiting[1])
            self._child(self.reply_latency, waiting[0]).observe(latency)

    def failed(self, channel: str, reason: str, transcript_id: int | None = None) -> None:
        self.delivery_failures.labels(channel, reason).inc()
        if transcript_id is not None:
            self._awaiting.pop(transcript_id, None)

    def retried(self, channel: str, reason: str) -> None:
        self.delivery_retries.labels(channel, reason).inc()

    def faq(self, outcome: str) -> None:
        self.faq_questions.labels(FAQ_OUTCOMES.get(outcome, "unanswered")).inc()
