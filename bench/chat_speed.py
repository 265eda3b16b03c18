"""Speed of a bundled chat model on this machine: prompt processing (to the first token) and decoding.

    .venv/bin/python bench/chat_speed.py Qwen2.5-Coder-0.5B-Instruct [--threads 2]

Loads the GGUF (joined and sha256-checked by rag.providers.bundled_gguf), then for an English and a Korean prompt
(a Korean one from dev-ko's questions) times a streamed chat completion: seconds to the first token, prompt
tokens per second, decode tokens per second. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a bundled model name (rag.providers.bundled_gguf.MODELS)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import llama_cpp

    from rag.providers import bundled_gguf

    started = time.perf_counter()
    llm = llama_cpp.Llama(model_path=bundled_gguf.path(args.model), n_ctx=4096, n_threads=args.threads, verbose=False)
    out: dict = {"model": args.model, "threads": args.threads, "load_s": round(time.perf_counter() - started, 2)}
    korean = (ROOT.parent / "shared" / "eval" / "dev-ko" / "qa.jsonl").read_text(encoding="utf-8")[:1500]
    english = "The company reported revenue of $1,577 million in fiscal 2015, up from $1,400 million. " * 12
    for label, text in (("en", english), ("ko", korean)):
        messages = [{"role": "user", "content": text + "\n\nSummarise the text above in one sentence."}]
        llm.reset()
        started, first, tokens = time.perf_counter(), None, 0
        for part in llm.create_chat_completion(messages=messages, max_tokens=48, temperature=0, stream=True):
            if part["choices"][0].get("delta", {}).get("content"):
                tokens += 1
                first = first if first is not None else time.perf_counter() - started
        total = time.perf_counter() - started
        prompt = len(llm.tokenize(text.encode()))
        out[label] = {"prompt_tokens": prompt, "first_token_s": round(first or total, 2),
                      "prompt_tokens_per_s": round(prompt / (first or total)),
                      "decode_tokens_per_s": round((tokens - 1) / (total - first), 1) if first and tokens > 1 else None}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
