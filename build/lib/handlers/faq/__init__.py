"""Free-text questions answered from the knowledge base under texts/faq/."""

from handlers.faq.dialogue import router
from handlers.faq.service import Faq, Verdict, load_faq

__all__ = ["Faq", "Verdict", "load_faq", "router"]
