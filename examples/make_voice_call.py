"""Write a seeded 60-minute voice conversation as conversation JSONL.

A caller and a travel concierge talk for an hour: the caller speaks 4-14 s a turn, the
assistant answers in 3-12 s, and about every eighth exchange the assistant calls a tool whose
JSON answer is a few hundred tokens. Transcripts are drawn from a small phrase book at speech
rate (about 2.5 words a second). Every item carries its start time ``t``.

    python examples/make_voice_call.py [--minutes 60] [--seed 7] [--out examples/voice-call-60min.jsonl]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

CALLER = [
    "I need to move my flight to Oslo to the sixth",
    "my booking code is K7QX2P",
    "can you check whether there is a window seat",
    "I am travelling with my daughter who is seven",
    "what does the change fee come to in euros",
    "please add a vegetarian meal for both of us",
    "is the hotel near the central station",
    "we land late so breakfast is not needed on the first day",
    "could you hold the fare until tomorrow morning",
    "my loyalty number is NW 88 41 27",
    "actually make that the seventh instead of the sixth",
    "remind me what the baggage allowance is",
]
CONCIERGE = [
    "of course let me look that up for you",
    "I have found two flights that fit those dates",
    "the fare difference would be forty two euros",
    "I have noted the vegetarian meals on the booking",
    "the hotel is a five minute walk from the station",
    "your seats are fourteen A and fourteen B by the window",
    "the allowance is one bag of twenty three kilos each",
    "I can hold that fare until nine tomorrow morning",
    "I have changed the date to the seventh as you asked",
    "is there anything else I can help you with today",
]


def sentence(rng: random.Random, book: list[str], seconds: float) -> str:
    words_wanted = max(3, int(seconds * 2.5))
    words: list[str] = []
    while len(words) < words_wanted:
        words.extend(rng.choice(book).split())
    return " ".join(words[:words_wanted]).capitalize() + "."


def tool_output(rng: random.Random, n: int) -> str:
    flights = [
        {
            "flight": f"NW{rng.randint(100, 999)}",
            "from": "LIS",
            "to": "OSL",
            "departs": f"2026-12-0{rng.randint(5, 8)}T{rng.randint(6, 21):02d}:{rng.choice(['05', '20', '45'])}",
            "fare_eur": rng.randint(90, 420),
            "seats_left": rng.randint(1, 9),
            "cabin": rng.choice(["economy", "premium", "business"]),
        }
        for _ in range(rng.randint(4, 10))
    ]
    return json.dumps({"query": n, "results": flights}, separators=(",", ":"))


def conversation(minutes: float, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    end = minutes * 60
    t = 0.0
    items: list[dict[str, object]] = []
    exchange = 0
    while True:
        user_s = rng.uniform(4, 14)
        if t + user_s > end:
            break
        items.append(
            {
                "type": "message",
                "role": "user",
                "text": sentence(rng, CALLER, user_s),
                "audio_ms": int(user_s * 1000),
                "t": round(t, 3),
            }
        )
        t += user_s + 0.6
        exchange += 1
        if exchange % 8 == 0:
            call_id = f"call_{exchange}"
            items.append(
                {
                    "type": "function_call",
                    "name": "search_flights",
                    "call_id": call_id,
                    "arguments": json.dumps({"origin": "LIS", "destination": "OSL"}),
                    "t": round(t, 3),
                }
            )
            t += 0.4
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": call_id,
                    "output": tool_output(rng, exchange),
                    "t": round(t, 3),
                }
            )
            t += 0.3
        reply_s = rng.uniform(3, 12)
        items.append(
            {
                "type": "message",
                "role": "assistant",
                "text": sentence(rng, CONCIERGE, reply_s),
                "audio_ms": int(reply_s * 1000),
                "t": round(t, 3),
            }
        )
        t += reply_s + 1.5
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("voice-call-60min.jsonl")
    )
    args = parser.parse_args()
    items = conversation(args.minutes, args.seed)
    args.out.write_text("".join(json.dumps(i) + "\n" for i in items))
    print(f"wrote {len(items)} items to {args.out}")


if __name__ == "__main__":
    main()
