"""Benchmark datasets: long voice conversations with facts planted early and probed late.

* `synthetic`: the simulator's seeded workloads with one fact of each type planted (name, code,
  preference, constraint, decision, open task, an updated value with its stale value, an entity
  and its role), in varied surface forms.
* `chitchat`: real human conversations from the ``chitchat-dataset`` package (MIT; its data
  ships in the wheel) joined into long sessions, with the same facts planted in the user's turns.
* `locomo` and `longmemeval`: the user's own copies of those benchmarks, read from a path (never
  downloaded); their question/answer pairs are the probes.
* `load_datasets`: the conversations of one benchmark run, datasets chosen by name (`DATASETS`)
  and files; what ``context-manager bench`` runs.

Every conversation is a list of items in the library's format (user and assistant audio with
transcripts) and a list of `PlantedFact` with one question each, for retrieval-based metrics.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigurationError, InputFormatError
from ..items import Item, Message
from ..simulate.workloads import DEFAULT_FACTS, PlantedFact, generate, workload

__all__ = [
    "DATASETS",
    "QUESTIONS",
    "BenchConversation",
    "Recipe",
    "call_length",
    "chitchat",
    "load_datasets",
    "locomo",
    "longmemeval",
    "minutes_spread",
    "recipes",
    "synthetic",
]

QUESTIONS: dict[str, str] = {
    "name": "What is the caller's name?",
    "code": "What is the booking reference?",
    "preference": "What does the caller always prefer?",
    "constraint": "What can the caller not do?",
    "decision": "Which option did we go with?",
    "open_task": "What must be remembered before we finish?",
    "updated": "What is the caller's phone number?",
    "entity_role": "Who is the caller's travel manager?",
}
"""The question each planted fact type answers (for retrieval over the retained context)."""

_USER_MS_PER_WORD = 400  # about 150 words a minute
_ASSISTANT_MS_PER_WORD = 330


@dataclass(frozen=True, slots=True)
class BenchConversation:
    """One conversation of a benchmark dataset."""

    name: str
    items: tuple[Item, ...]
    facts: tuple[PlantedFact, ...]
    questions: tuple[str, ...]
    """One question per fact, in the same order."""
    dataset: str = ""
    """The dataset it comes from (``voice-agent``, ``chitchat``, ``locomo``...)."""
    tokens: tuple[int, ...] | None = None
    """Each item's text tokens, when the dataset knows them (generated calls:
    `given.batch_from_items`' counts, so a run need not count them again)."""


def _question(fact: PlantedFact) -> str:
    return QUESTIONS.get(fact.kind, fact.statement)


def _check_size(count: int, minutes: float) -> None:
    if count < 1:
        raise ConfigurationError(f"a dataset needs at least 1 call, got {count}")
    if not minutes > 0:
        raise ConfigurationError(f"conversations need minutes > 0, got {minutes:g}")


def synthetic(
    count: int,
    *,
    minutes: float = 50.0,
    seed: int = 0,
    workload_name: str = "voice-agent",
    part: tuple[int, int] | None = None,
) -> list[BenchConversation]:
    """`count` seeded calls of `minutes` of a simulator workload, one fact of each type planted.

    With `part` (``(start, stop)``), only those of the `count` calls, the same as in the
    whole set.
    """
    _check_size(count, minutes)
    spec = workload(workload_name, minutes=minutes, facts=DEFAULT_FACTS)
    batch = generate(spec, count, np.random.default_rng(seed))
    out = []
    for n in range(*(part or (0, count))):
        facts = tuple(batch.facts[n])
        questions = tuple(_question(f) for f in facts)
        name = f"{workload_name}-{seed}-{n}"
        tokens = tuple(batch.text_tokens[batch.call_slice(n)].tolist())
        out.append(BenchConversation(name, tuple(batch.items(n)), facts, questions, workload_name,
                                     tokens))  # fmt: skip
    return out


def _spoken(role: str, text: str, t: float) -> tuple[Message, float]:
    words = max(len(text.split()), 1)
    per_word = _USER_MS_PER_WORD if role == "user" else _ASSISTANT_MS_PER_WORD
    ms = words * per_word
    return Message(role="user" if role == "user" else "assistant", text=text, audio_ms=ms, t=t), (
        t + ms / 1000 + 1.0
    )


def _plant(
    turns: list[tuple[str, str]], rng: np.random.Generator
) -> tuple[list[tuple[str, str]], list[tuple[int, str, str, tuple[str, ...], tuple[str, ...]]]]:
    """Insert a user statement of each default fact type into `turns`, where the spec says.

    Returns the new turns and, per fact, (index of the statement that holds it, kind, statement,
    probes, stale values); an updated fact is held by its correction.
    """
    # (position in the original turns, statement, the fact it holds or None for an old value)
    inserts: list[tuple[int, str, tuple[str, str, tuple[str, ...], tuple[str, ...]] | None]] = []
    for spec in DEFAULT_FACTS:
        choice = int(rng.integers(len(spec.values)))
        value = str(spec.values[choice])
        at = max(1, int(spec.at * len(turns)))
        if spec.update_at is not None and spec.update_template is not None:
            old = str(spec.values[(choice + 1) % len(spec.values)])
            inserts.append((at, spec.template.format(old=old, value=old), None))
            later = max(at + 1, int(spec.update_at * len(turns)))
            correction = spec.update_template.format(value=value, old=old)
            inserts.append((later, correction, (spec.kind, correction, (value,), (old,))))
        else:
            statement = spec.template.format(value=value)
            inserts.append((at, statement, (spec.kind, statement, (value,), ())))
    inserts.sort(key=lambda x: x[0])  # stable: facts at one place keep their order
    out: list[tuple[str, str]] = []
    planted = []
    pending = iter(inserts)
    upcoming = next(pending, None)
    for n, turn in enumerate([*turns, ("", "")]):
        while upcoming is not None and upcoming[0] <= n:
            if upcoming[2] is not None:
                planted.append((len(out), *upcoming[2]))
            out.append(("user", upcoming[1]))
            upcoming = next(pending, None)
        if turn[0]:
            out.append(turn)
    return out, planted


def _conversation(
    name: str, turns: list[tuple[str, str]], rng: np.random.Generator
) -> BenchConversation:
    turns, planted = _plant(turns, rng)
    items: list[Item] = []
    index_of_turn: list[int] = []
    t = 0.0
    for role, text in turns:
        index_of_turn.append(len(items))
        item, t = _spoken(role, text, t)
        items.append(item)
    facts = tuple(
        PlantedFact(kind, index_of_turn[turn], statement, probes, stale)
        for turn, kind, statement, probes, stale in planted
    )
    questions = tuple(_question(f) for f in facts)
    return BenchConversation(name, tuple(items), facts, questions, "chitchat")


def chitchat(
    count: int, *, minutes: float = 50.0, seed: int = 0, part: tuple[int, int] | None = None
) -> list[BenchConversation]:
    """`count` long sessions of real human chit-chat, joined to `minutes` each, facts planted.

    Conversations of the ``chitchat-dataset`` package (shuffled with `seed`) follow each other
    until the session's speech lasts `minutes`; the first speaker of each is the user. With
    `part` (``(start, stop)``), only those of the `count` sessions, the same as in the whole set.
    """
    start, stop = part or (0, count)
    _check_size(count, minutes)
    data = _chitchat_data()
    keys = sorted(data)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(keys))
    out = []
    cursor = 0
    for n in range(count):
        turns: list[tuple[str, str]] = []
        spoken_ms = 0.0
        # Room for the planted statements: the call's speech stops short of `minutes`.
        limit = 0.95 * minutes * 60_000 - 60_000
        while spoken_ms < limit:
            convo = data[keys[order[cursor % len(keys)]]]
            cursor += 1
            first = None
            for turn in convo.get("messages") or []:
                if not turn or spoken_ms >= limit:
                    continue
                sender = turn[0].get("sender")
                first = first or sender
                text = " ".join(str(m.get("text") or "").strip() for m in turn).strip()
                if not text:
                    continue
                role = "user" if sender == first else "assistant"
                if turns and turns[-1][0] == role:
                    turns[-1] = (role, f"{turns[-1][1]} {text}")
                else:
                    turns.append((role, text))
                per_word = _USER_MS_PER_WORD if role == "user" else _ASSISTANT_MS_PER_WORD
                spoken_ms += len(text.split()) * per_word + 1000
        if n >= stop:
            break
        if n < start:
            _plant(turns, rng)  # the same draws as when it is made
            continue
        out.append(_conversation(f"chitchat-{seed}-{n}", turns, rng))
    return out


@cache
def _chitchat_data() -> dict[str, Any]:
    """The chitchat conversations, read from the JSON file the package ships."""
    try:
        from importlib.resources import files

        source = files("chitchat_dataset") / "dataset.json"
        with source.open("r", encoding="utf-8") as handle:
            data: dict[str, Any] = json.load(handle)
    except (ImportError, ModuleNotFoundError, FileNotFoundError):
        raise ConfigurationError(
            'the chitchat dataset needs its package: pip install "context-manager[bench]"'
        ) from None
    return data


def _read_json(path: str | Path) -> Any:
    """A dataset's JSON, from the file or from the one ``.json`` file of a zip.

    The published LoCoMo data ships as ``locomo10.zip``.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
        if p.suffix.lower() == ".zip" and not zipfile.is_zipfile(p):
            raise InputFormatError("not a zip file (or a damaged one)", source=str(p))
        if zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as archive:
                members = [n for n in archive.namelist() if n.lower().endswith(".json")]
                if len(members) != 1:
                    raise InputFormatError(
                        f"a dataset zip must hold one .json file, found {len(members)}",
                        source=str(p),
                    )
                raw = archive.read(members[0])
    except (OSError, zipfile.BadZipFile) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputFormatError(f"cannot read: {reason}", source=str(p)) from exc
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputFormatError("not UTF-8 text", source=str(p)) from None
    except json.JSONDecodeError as exc:
        raise InputFormatError(f"not JSON: {exc.msg}", source=str(p), line=exc.lineno) from exc
    except RecursionError:
        raise InputFormatError("JSON nested too deeply", source=str(p)) from None


@dataclass(frozen=True, slots=True)
class _Answer:
    """One question of an external benchmark, its answer, category and evidence turn."""

    question: str
    answer: str
    kind: str
    turn: int


def _qa_conversation(
    dataset: str, name: str, turns: Sequence[tuple[str, str]], answers: Iterable[_Answer]
) -> BenchConversation:
    items: list[Item] = []
    t = 0.0
    for role, text in turns:
        item, t = _spoken(role, text, t)
        items.append(item)
    facts, questions = [], []
    for a in answers:
        if a.answer.strip():
            facts.append(PlantedFact(a.kind, a.turn, a.question, (a.answer,)))
            questions.append(a.question)
    return BenchConversation(name, tuple(items), tuple(facts), tuple(questions), dataset)


def _expect(value: Any, kind: type, source: str, field: str) -> Any:
    """`value` if it is a `kind`, else a clear error naming the field and what it holds."""
    if not isinstance(value, kind):
        name = type(value).__name__
        held = "nothing" if value is None else f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
        raise InputFormatError(
            f"expected a {'list' if kind is list else 'JSON object'}, found {held}",
            source=source,
            field=field,
        )
    return value


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def locomo(path: str | Path) -> list[BenchConversation]:
    """Read a LoCoMo file (``locomo10.json``): each sample's sessions in order, its QA as probes.

    Speaker A is the user. A turn that shares an image is read as its text followed by the
    image's caption, as LoCoMo's own evaluation does. Each answer is a fact whose type is the
    question's category (``locomo-category-N``) and whose item is the first turn of its evidence;
    questions without an answer (the adversarial category) are skipped.
    """
    source = str(path)
    data = _expect(_read_json(path), list, source, "(top level)")
    out = []
    for n, raw in enumerate(data):
        sample = _expect(raw, dict, source, f"[{n}]")
        convo = _expect(sample.get("conversation"), dict, source, f"[{n}].conversation")
        speaker_a = convo.get("speaker_a")
        keys = sorted((k for k in convo if k.startswith("session_") and k[8:].isdigit()),
                      key=lambda k: int(k[8:]))  # fmt: skip
        turns: list[tuple[str, str]] = []
        turn_of: dict[str, int] = {}
        for key in keys:
            session = _expect(convo[key], list, source, f"[{n}].conversation.{key}")
            for m, raw_turn in enumerate(session):
                turn = _expect(raw_turn, dict, source, f"[{n}].conversation.{key}[{m}]")
                text = _text(turn.get("text"))
                if turn.get("blip_caption"):
                    text = f"{text} [shares a photo: {turn['blip_caption']}]".strip()
                turn_of.setdefault(_text(turn.get("dia_id")), len(turns))
                turns.append(("user" if turn.get("speaker") == speaker_a else "assistant", text))
        answers = []
        for m, raw_qa in enumerate(sample.get("qa") or []):
            qa = _expect(raw_qa, dict, source, f"[{n}].qa[{m}]")
            answer = qa.get("answer")
            if not isinstance(answer, str | int | float) or isinstance(answer, bool):
                continue
            evidence = [turn_of[e] for e in qa.get("evidence") or [] if e in turn_of]
            kind = f"locomo-category-{qa.get('category', 'unknown')}"
            answers.append(_Answer(_text(qa.get("question")), str(answer), kind,
                                   min(evidence, default=0)))  # fmt: skip
        name = _text(sample.get("sample_id")) or f"locomo-{n}"
        out.append(_qa_conversation("locomo", name, turns, answers))
    return out


def longmemeval(path: str | Path) -> list[BenchConversation]:
    """Read a LongMemEval file: each question's haystack sessions in order, its answer as probe.

    The fact's type is the question's ``question_type`` and its item the first turn marked
    ``has_answer``. Abstention questions (ids ending in ``_abs``, whose answer is that the
    conversation never says) are skipped: no retained text can show them.
    """
    source = str(path)
    data = _expect(_read_json(path), list, source, "(top level)")
    out = []
    for n, raw in enumerate(data):
        entry = _expect(raw, dict, source, f"[{n}]")
        name = _text(entry.get("question_id")) or f"longmemeval-{n}"
        if name.endswith("_abs"):
            continue
        sessions = _expect(entry.get("haystack_sessions"), list, source, f"[{n}].haystack_sessions")
        turns: list[tuple[str, str]] = []
        evidence = None
        for s, raw_session in enumerate(sessions):
            session = _expect(raw_session, list, source, f"[{n}].haystack_sessions[{s}]")
            for m, raw_turn in enumerate(session):
                where = f"[{n}].haystack_sessions[{s}][{m}]"
                turn = _expect(raw_turn, dict, source, where)
                if turn.get("has_answer") and evidence is None:
                    evidence = len(turns)
                role = "user" if turn.get("role") == "user" else "assistant"
                turns.append((role, _text(turn.get("content"))))
        kind = _text(entry.get("question_type")) or "qa"
        answer = _Answer(_text(entry.get("question")), _text(entry.get("answer")), kind,
                         evidence or 0)  # fmt: skip
        out.append(_qa_conversation("longmemeval", name, turns, [answer]))
    return out


DATASETS = ("voice-agent", "support-call", "tool-heavy", "chitchat")
"""The datasets `load_datasets` builds by name; LoCoMo and LongMemEval are read from files."""


DEFAULT_DATASETS = "voice-agent,support-call,tool-heavy,chitchat"
"""What ``bench`` runs when neither ``--dataset`` nor a file of its own is given."""


def call_length(conversation: BenchConversation) -> float:
    """The call's real length in minutes: it ends when its last item does (time plus audio)."""
    end = 0.0
    for item in conversation.items:
        if item.t is not None:
            audio = getattr(item, "audio_ms", None) or 0
            end = max(end, item.t + audio / 1000)
    return end / 60


def call_minutes(conversations: Sequence[BenchConversation]) -> dict[str, float]:
    """The real lengths of the calls, in minutes: the shortest, the median and the longest.

    A call ends when its last item does (its time, plus its audio).
    """
    return minutes_spread([call_length(c) for c in conversations])


def minutes_spread(lengths: Sequence[float]) -> dict[str, float]:
    """The shortest, the median and the longest of call lengths (0 for none)."""
    if not lengths:
        return {"min": 0.0, "median": 0.0, "max": 0.0}
    ordered = sorted(lengths)
    return {"min": ordered[0], "median": ordered[len(ordered) // 2], "max": ordered[-1]}


@dataclass(frozen=True, slots=True)
class Recipe:
    """Calls ``start`` to ``stop`` of a named dataset's `count`: made where they run.

    A benchmark sends recipes to its workers rather than the calls (`run.run_bench`).
    """

    dataset: str
    count: int
    minutes: float
    seed: int
    start: int
    stop: int

    def build(self) -> list[BenchConversation]:
        """The calls, as `load_datasets` makes them."""
        part = (self.start, self.stop)
        if self.dataset == "chitchat":
            return chitchat(self.count, minutes=self.minutes, seed=self.seed, part=part)
        return synthetic(self.count, minutes=self.minutes, seed=self.seed,
                         workload_name=self.dataset, part=part)  # fmt: skip


def recipes(
    names: Iterable[str],
    *,
    count: int,
    minutes: float = 50.0,
    seeds: Sequence[int] = (0,),
    size: int = 20,
) -> list[Recipe]:
    """The named datasets of `load_datasets` as recipes of at most `size` calls each.

    Raises:
        ConfigurationError: a name that is not in `DATASETS`, or a bad `count` or `minutes`.
    """
    out: list[Recipe] = []
    for name in (n.strip() for n in names if n.strip()):
        if name not in DATASETS:
            raise ConfigurationError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
        _check_size(count, minutes)
        for seed in seeds:
            out += [Recipe(name, count, minutes, seed, a, min(a + size, count))
                    for a in range(0, count, size)]  # fmt: skip
    return out


def load_datasets(
    names: Iterable[str],
    *,
    count: int,
    minutes: float = 50.0,
    seeds: Sequence[int] = (0,),
    locomo_path: str | Path | None = None,
    longmemeval_path: str | Path | None = None,
) -> list[BenchConversation]:
    """The conversations of a benchmark run: named datasets, then the user's own files.

    Each name in `names` (surrounding blanks ignored, empty names skipped) is one of `DATASETS`:
    for each seed in `seeds`, in order, `count` conversations of `minutes` from `synthetic` (the
    simulator's workloads) or `chitchat`. Then every conversation of the LoCoMo file at
    `locomo_path` and of the LongMemEval file at `longmemeval_path`, when given. This is what
    ``context-manager bench --dataset ... --calls ... --seeds ... --locomo ... --longmemeval ...``
    runs.

    Raises:
        ConfigurationError: a name that is not in `DATASETS`, or a bad `count` or `minutes`.
        InputFormatError: a LoCoMo or LongMemEval file that cannot be read.

    Examples:
        >>> calls = load_datasets(["voice-agent", " tool-heavy "], count=1, minutes=5, seeds=[0, 1])
        >>> [c.name for c in calls]
        ['voice-agent-0-0', 'voice-agent-1-0', 'tool-heavy-0-0', 'tool-heavy-1-0']
    """
    made = recipes(names, count=count, minutes=minutes, seeds=seeds, size=max(count, 1))
    out = [c for recipe in made for c in recipe.build()]
    if locomo_path is not None:
        out += locomo(locomo_path)
    if longmemeval_path is not None:
        out += longmemeval(longmemeval_path)
    return out
