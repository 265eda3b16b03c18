"""Follow-up questions: tell when a question leans on the conversation, and rewrite it to stand alone.

"When was it built?" or "그럼 2022년은?" cannot be searched as they are; "What is the boiling point of mercury?"
can, and is searched as asked, so a topic from earlier in the chat never leaks into an unrelated question.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from rag.answer import prompts
from rag.providers.chat import ChatModel
from rag.providers.retry import OnRetry
from rag.text import language, tokenize
from rag.types import Usage

Turn = dict[str, str]  # {"role": "user" | "assistant", "content": ...}

_REFERS_BACK_EN = re.compile(r"\b(it|its|they|them|their|this|that|these|those|he|she|him|his|her|there|then|same|"
                             r"also|too|else|former|latter|above|previous)\b|^\s*(and|but|or|so|what about|how about)\b",
                             re.I)
_REFERS_BACK_KO = re.compile(r"그것|이것|저것|그거|이거|그건|이건|그럼|그러면|그리고|거기|그때|그곳|해당|위의|앞의|"
                             r"그\s|이\s|저\s|또|그래서|그중|그 중")


def needs_context(question: str) -> bool:
    """Does a follow-up lean on the conversation ("when was it built?", "what about 2022?", "그럼 2022년은?")?
    Short questions with few content words do too."""
    pattern = _REFERS_BACK_KO if language(question) == "ko" else _REFERS_BACK_EN
    return bool(pattern.search(question)) or len(set(tokenize(question))) <= 2


def condense(chat: ChatModel, question: str, history: Sequence[Turn],
             on_retry: OnRetry | None = None) -> tuple[str, Usage]:
    """Rewrite a follow-up ("what about 2022?") into a standalone question, using the recent history."""
    recent = [t for t in history if t.get("role") in ("user", "assistant") and t.get("content")][-6:]
    if not recent or not needs_context(question):
        return question.strip(), Usage()  # a self-contained question: no rewrite, no topic carried over
    messages: list[BaseMessage] = [SystemMessage(prompts.CONDENSE)]
    for turn in recent:
        content = str(turn["content"])[:1500]
        messages.append(HumanMessage(content) if turn["role"] == "user" else AIMessage(content))
    messages.append(HumanMessage(f"Last user question: {question}\nStandalone question:"))
    text, usage = chat.invoke(messages, params={"temperature": 0.0, "max_tokens": 96}, on_retry=on_retry)
    rewritten = text.strip().strip('"').splitlines()[0].strip() if text.strip() else ""
    last_user = next((str(t["content"]) for t in reversed(recent) if t["role"] == "user"), "")
    if not _usable_rewrite(rewritten, question, " ".join(str(t["content"]) for t in recent)):
        rewritten = f"{last_user} {question}".strip()  # a tiny model may answer instead of rewriting
    return rewritten, usage


def _usable_rewrite(rewritten: str, question: str, history: str) -> bool:
    """A rewrite is usable when it is a question in the same language that brings in something from the
    conversation (otherwise it resolved nothing, or the model answered instead of rewriting)."""
    if not rewritten or len(rewritten) > 4 * len(question) + 200 or language(rewritten) != language(question):
        return False
    if not (rewritten.rstrip().endswith(("?", "？")) or re.search(r"(까|요|나요|가요)\s*[?.]?$", rewritten)):
        return False
    new_terms = set(tokenize(rewritten)) - set(tokenize(question))
    return bool(new_terms & set(tokenize(history)))
