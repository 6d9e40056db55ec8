"""The dialogues, channel-agnostic: (Incoming, Context) -> replies.

`build_router()` composes one router per feature; free-text catch-alls come last.
"""

from __future__ import annotations

from handlers.core import Button, Context, Incoming, MenuItem, Reply, Router, State

__all__ = ["Button", "Context", "Incoming", "MenuItem", "Reply", "Router", "State", "build_router"]


def build_router() -> Router:
    from handlers import (
        catalogue,
        certificate,
        children,
        confirmation,
        faq,
        handoff,
        hotline,
        linking,
        menu,
        municipality,
        registration,
        reminders,
        requests,
        understanding,
    )

    root = Router("root")
    root.include(
        menu.router,
        registration.router,
        certificate.router,
        confirmation.router,
        municipality.router,
        catalogue.router,
        children.router,
        requests.router,
        linking.router,
        hotline.router,
        handoff.router,
        understanding.router,
        reminders.router,
        # The FAQ's free-text catch-all answers anything no step waits for: keep it last.
        faq.router,
    )
    return root
