"""Accuracy and speed of reply extraction (app/email/reply.py) beside four libraries, on the email
corpora in ``../shared/corpora/email/`` (read at run time, never copied into the project).

Run from the repository root:

    .venv/bin/pip install -r requirements-bench.txt   # talon, email-reply-parser, mail-parser-reply, quotequail
    .venv/bin/python bench/reply.py                   # the table
    .venv/bin/python bench/reply.py --errors          # also list our misses
    .venv/bin/python bench/reply.py --json            # machine-readable figures

Sets and scores (every extractor runs on the same files in the same run):

- discourse: exact match of the visible reply with ``test/trimmed/<name>.txt`` after stripping outer
  whitespace, over the 32 bodies of ``discourse-email_reply_trimmer/test/emails``. Ours is scored on
  ``ReplyParts.reply`` only; a library scores if either its reply without signature or its reply
  with signature matches (the more generous reading for them).
- zapier / alfonsrv: share of the assertions in each folder's ``EXPECTATIONS.md`` that hold, as
  paraphrased in ``ZAPIER_CHECKS`` / ``ALFONSRV_CHECKS`` below (fragment and reply counts have no
  common form across libraries and are left out). Each check reads one view of the result: ``reply``
  (new text without signature), ``body`` (also without the closing "Regards,\\nJan"), ``signature``,
  ``signoff`` (closing + signature), ``quoted`` (the removed history). Libraries fill the views they
  have; a library that raises on a file fails every check of that file.

Targets: ≥ 90% exact match on discourse, ahead of every library on every set, ≤ 1 ms per message.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder would come first on sys.path, and bench/email.py would hide
# the standard library's email package: the repository root goes first instead, bench/ not at all.
sys.path[:] = [str(Path(__file__).resolve().parent.parent)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

from app.email.reply import extract_reply  # noqa: E402

CORPORA = ROOT.parent / "shared" / "corpora" / "email"
DISCOURSE = CORPORA / "discourse-email_reply_trimmer" / "test"
ZAPIER = CORPORA / "zapier-email-reply-parser" / "test" / "emails"
ALFONSRV = CORPORA / "alfonsrv-mail-parser-reply" / "test" / "emails"
TARGETS = {"discourse": 0.90, "us_per_message": 1000.0}

# (file, view, op, value). ops: eq, contains, not_contains, startswith, empty.
Check = tuple[str, str, str, str]

ZAPIER_CHECKS: list[Check] = [
    ("email_1_1.txt", "reply", "contains", "folks"),
    ("email_1_1.txt", "body", "not_contains", "riak-users"),
    ("email_1_1.txt", "signoff", "contains", "riak-users"),
    ("email_1_2.txt", "reply", "contains", "Hi,"),
    ("email_1_2.txt", "reply", "contains", "You can list the keys for the bucket"),
    ("email_1_2.txt", "reply", "not_contains", "Abhishek Kona wrote:"),
    ("email_1_2.txt", "body", "not_contains", "riak-users"),
    ("email_1_3.txt", "reply", "contains", "Having the function would be great."),
    ("email_1_3.txt", "reply", "not_contains", "Russell Brown wrote:"),
    ("email_1_4.txt", "reply", "contains", "Awesome"),
    ("email_1_4.txt", "quoted", "contains", "On Aug 22, 2011"),
    ("email_1_4.txt", "quoted", "contains", "Loader"),
    ("email_1_4.txt", "reply", "not_contains", "Loader"),
    ("email_1_5.txt", "reply", "eq", "@full"),
    ("email_1_6.txt", "reply", "contains", "I get"),
    ("email_1_6.txt", "quoted", "contains", "On Dec 16, 2011"),
    ("email_1_6.txt", "reply", "not_contains", "caching related"),
    ("email_1_7.txt", "reply", "contains", ":+1:"),
    ("email_1_7.txt", "quoted", "contains", "Steps 0-2"),
    ("email_1_7.txt", "reply", "not_contains", "Steps 0-2"),
    ("email_1_8.txt", "reply", "contains", "I will reply under this one"),
    ("email_1_8.txt", "reply", "contains", "and under this."),
    ("email_1_8.txt", "reply", "not_contains", "Hey there, this is my signature"),
    ("correct_sig.txt", "signature", "contains", "--"),
    ("correct_sig.txt", "reply", "eq", "this is an email with a correct -- signature."),
    ("email_gmail.txt", "reply", "eq", "This is a test for inbox replying to a github message."),
    ("email_2_1.txt", "reply", "eq", "Outlook with a reply"),
    ("email_2_2.txt", "reply", "eq", "Outlook with a reply directly above line"),
    ("email_2_3.txt", "reply", "eq", "Outlook with a reply above headers using unusual format"),
    ("email_iPhone.txt", "reply", "not_contains", "Sent from my iPhone"),
    ("email_one_is_not_on.txt", "reply", "not_contains", "On Oct 1, 2012, at 11:55 PM, Dave Tapley wrote:"),
    ("email_partial_quote_header.txt", "reply", "contains", "On your remote host you can run:"),
    ("email_partial_quote_header.txt", "reply", "contains", "telnet 127.0.0.1 52698"),
    ("email_partial_quote_header.txt", "reply", "contains", "This should connect to TextMate"),
    ("email_headers_no_delimiter.txt", "reply", "eq", "And another reply!"),
    ("greedy_on.txt", "reply", "startswith", "On your remote host"),
    ("greedy_on.txt", "quoted", "startswith", "On 9 Jan 2014"),
    ("email_sig_delimiter_in_middle_of_line.txt", "reply", "eq", "@full"),
    ("email_sig_delimiter_in_middle_of_line.txt", "signature", "empty", ""),
]

ALFONSRV_CHECKS: list[Check] = [
    ("email_1_1.txt", "body", "not_contains", "riak-users"),
    ("email_1_1.txt", "signoff", "contains", "riak-users"),
    ("email_1_1.txt", "signoff", "contains", "-Abhishek Kona"),
    ("email_1_1.txt", "body", "not_contains", "-Abhishek Kona"),
    ("email_1_3.txt", "signoff", "contains", "-Abhishek Kona"),
    ("email_1_3.txt", "quoted", "contains", "On 01/03/11 7:07 PM, Russell Brown wrote:"),
    ("email_1_3.txt", "reply", "not_contains", "Russell Brown wrote:"),
    ("email_1_4.txt", "quoted", "contains", "defunkt<reply@reply.github.com>"),
    ("email_1_5.txt", "reply", "eq", "@full"),
    ("email_1_6.txt", "quoted", "contains", "<reply@reply.github.com>"),
    ("email_1_7.txt", "quoted", "contains", "<notifications@github.com>wrote:"),
    ("email_2_1.txt", "body", "eq", "Outlook with a reply\n\n\n------------------------------"),
    ("email_2_1.txt", "quoted", "contains", "Google Apps Sync Team [mailto:mail-noreply@google.com]"),
    ("email_2_1.txt", "body", "not_contains", "Google Apps Sync Team [mailto:mail-noreply@google.com]"),
    ("email_2_3.txt", "body", "eq", "Outlook with a reply above headers using unusual format"),
    ("email_headers_no_delimiter.txt", "body", "eq", "And another reply!"),
    ("email_headers_no_delimiter.txt", "quoted", "contains", "A reply"),
    ("email_headers_no_delimiter.txt", "quoted", "contains", "This is a message.\nWith a second line."),
    ("email_sent_from_iPhone.txt", "body", "eq", "Here is another email"),
    ("email_sent_from_iPhone.txt", "signature", "eq", "Sent from my iPhone"),
    ("email_sent_from_multi_word_mobile_device.txt", "body", "eq", "Here is another email"),
    ("email_sent_from_multi_word_mobile_device.txt", "signature", "eq", "Sent from my Verizon Wireless BlackBerry"),
    ("email_sent_from_BlackBerry.txt", "body", "eq", "Here is another email"),
    ("email_sent_from_BlackBerry.txt", "signature", "eq", "Sent from my BlackBerry"),
    ("email_sent_from_not_signature.txt", "body", "contains", "Sent from my desk, is much easier than my mobile phone."),
    ("email_sent_from_not_signature.txt", "signature", "empty", ""),
    ("email_ja_1_1.txt", "reply", "eq", "@full"),
    ("email_ja_1_2.txt", "reply", "contains", "お世話になっております。織田です。"),
    ("email_ja_1_2.txt", "reply", "not_contains", "かしこまりました"),
    ("email_ja_1_2.txt", "quoted", "contains", "かしこまりました"),
    ("email_nl_1_1.txt", "body", "not_contains", "riak-gebruikers"),
    ("email_nl_1_1.txt", "signoff", "contains", "-Maarten de Jong"),
    ("email_nl_1_2.txt", "body", "startswith", "Outlook met een antwoord"),
    ("email_nl_1_2.txt", "body", "not_contains", "Google Apps Sync Team"),
    ("email_nl_1_2.txt", "quoted", "contains", "Google Apps Sync Team [mailto:mail-noreply@google.com]"),
    ("email_pl_1_1.txt", "body", "contains", "Jak się masz?"),
    ("email_pl_1_1.txt", "signoff", "contains", "Pozdrawiam,\nJan"),
    ("email_pl_1_1.txt", "body", "not_contains", "Pozdrawiam"),
    ("email_pl_1_2.txt", "body", "contains", "Jak się masz?"),
    ("email_pl_1_2.txt", "quoted", "contains", "Dnia 28 lutego 2023 14:00 Anna Nowak"),
    ("email_pl_1_2.txt", "reply", "not_contains", "Wszystko w porządku"),
    ("email_pl_1_3.txt", "signoff", "contains", "Z powazaniem,\nJan"),
    ("email_pl_1_3.txt", "body", "not_contains", "Z powazaniem"),
    ("begins_with_signature.txt", "signoff", "startswith", "Regards,"),
    ("begins_with_signature.txt", "reply", "not_contains", "Cody Hart <omerritt@example.com>"),
    ("email_swedish_1.txt", "body", "contains", "Ursäkta mitt sena svar!"),
    ("email_swedish_1.txt", "quoted", "contains", "4 dec. 2024 kl. 18:36 skrev Person A"),
    ("email_swedish_2.txt", "signoff", "contains", "/John"),
    ("email_swedish_2.txt", "body", "not_contains", "/John"),
    ("email_swedish_2.txt", "quoted", "contains", "Den fre 28 feb. 2025"),
    ("email_sv_anon_1.txt", "body", "contains", "Berättar gärna."),
    ("email_sv_anon_1.txt", "quoted", "startswith", "ons 4 dec. 2024 kl. 20:42 skrev Person B"),
    ("email_sv_anon_1.txt", "reply", "not_contains", "Ursäkta mitt sena svar"),
    ("email_danish_1.txt", "body", "eq", "Hej Peter,\n\nTak for din mail. Det lyder godt."),
    ("email_danish_1.txt", "signoff", "startswith", "Med venlig hilsen"),
    ("email_danish_1.txt", "quoted", "startswith", "Den 24. nov. 2025 kl. 10.00 skrev Peter Petersen"),
    ("email_danish_2.txt", "body", "eq", "Hej Hanne,\n\nJeg har modtaget filerne."),
    ("email_danish_2.txt", "signoff", "startswith", "Hilsen"),
    ("email_danish_2.txt", "quoted", "startswith", "Fra: Hanne Hansen"),
    ("email_danish_3.txt", "body", "eq", "Hej,\n\nSvar."),
    ("email_danish_3.txt", "quoted", "startswith", "Den 24. nov. 2025"),
    ("email_danish_4.txt", "body", "eq", "Hej,\n\nSvar."),
    ("email_danish_4.txt", "quoted", "startswith", "-----Oprindelig meddelelse-----"),
    ("email_danish_5.txt", "body", "eq", "Hej,\n\nSvar."),
    ("email_danish_5.txt", "signoff", "eq", "Kh\nPeter"),
]


def check_holds(views: dict[str, str], full: str, check: Check) -> bool:
    _, view, op, value = check
    got = views.get(view, "").strip()
    if value == "@full":
        value = full.replace("\r\n", "\n").strip()
    if op == "eq":
        return got == value
    if op == "contains":
        return value in got
    if op == "not_contains":
        return value not in got
    if op == "startswith":
        return got.startswith(value)
    if op == "empty":
        return got == ""
    raise ValueError(f"unknown op {op}")


# ---- extractors: each returns the views it can fill -------------------------------------------

Views = dict[str, str]


def ours(text: str) -> Views:
    parts = extract_reply(text)
    return {"reply": parts.reply, "visible": parts.visible_with_signature, "body": parts.body,
            "signature": parts.signature, "signoff": "\n".join(p for p in (parts.closing, parts.signature) if p),
            "quoted": parts.quoted}


def _lib_views(text: str, reply: str, signature: str = "", quoted: str | None = None) -> Views:
    reply, signature = reply.strip(), signature.strip()
    if quoted is None:  # what the library removed
        normalized = text.replace("\r\n", "\n")
        quoted = normalized.split(reply, 1)[1] if reply and reply in normalized else normalized
    return {"reply": reply, "visible": "\n\n".join(p for p in (reply, signature) if p), "body": reply,
            "signature": signature, "signoff": signature, "quoted": quoted.strip()}


def talon_views(text: str) -> Views:
    from talon import quotations
    from talon.signature.bruteforce import extract_signature

    with_sig = quotations.extract_from_plain(text)
    reply, signature = extract_signature(with_sig)
    return {**_lib_views(text, reply, signature or ""), "visible": with_sig.strip()}


def zapier_views(text: str) -> Views:
    from email_reply_parser import EmailReplyParser

    message = EmailReplyParser.read(text)
    reply = EmailReplyParser.parse_reply(text)
    signature = "\n".join(f.content for f in message.fragments if f.signature)
    quoted = "\n".join(f.content for f in message.fragments if f.quoted or (f.hidden and not f.signature))
    return _lib_views(text, reply, signature, quoted)


MAIL_PARSER_REPLY_LANGUAGES = ["en", "de", "fr", "es", "nl", "it", "da", "sv", "pl", "ja", "cs", "zh", "ko"]


def mail_parser_reply_views(text: str) -> Views:
    from mailparser_reply import EmailReplyParser

    replies = EmailReplyParser(languages=MAIL_PARSER_REPLY_LANGUAGES).read(text).replies
    if not replies:
        return _lib_views(text, "")
    first = replies[0]
    quoted = "\n".join("\n".join(p for p in (r.headers, r.body, r.signatures) if p) for r in replies[1:])
    views = _lib_views(text, first.body, first.signatures or "", quoted)
    views["visible"] = "\n\n".join(p for p in (first.body.strip(), (first.signatures or "").strip()) if p)
    return views


def quotequail_views(text: str) -> Views:
    import quotequail

    parts = quotequail.quote(text)
    reply = "\n".join(t for shown, t in parts if shown)
    quoted = "\n".join(t for shown, t in parts if not shown)
    return _lib_views(text, reply, "", quoted)


EXTRACTORS: dict[str, Callable[[str], Views]] = {
    "ours": ours,
    "talon": talon_views,
    "email-reply-parser": zapier_views,
    "mail-parser-reply": mail_parser_reply_views,
    "quotequail": quotequail_views,
}


def available() -> dict[str, Callable[[str], Views] | str]:
    """Each extractor, or the reason it cannot run (library not installed)."""
    out: dict[str, Callable[[str], Views] | str] = {}
    probes = {"talon": "talon", "email-reply-parser": "email_reply_parser",
              "mail-parser-reply": "mailparser_reply", "quotequail": "quotequail"}
    for name, fn in EXTRACTORS.items():
        module = probes.get(name)
        if module:
            try:
                __import__(module)
            except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
                out[name] = f"not installed ({type(exc).__name__}: {exc})"
                continue
        out[name] = fn
    return out


# ---- scoring ----------------------------------------------------------------------------------

@dataclass
class SetScore:
    ok: int = 0
    n: int = 0
    misses: list[str] | None = None

    @property
    def rate(self) -> float:
        return self.ok / self.n if self.n else 0.0


def _run(fn: Callable[[str], Views], text: str) -> Views | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(text)
    except Exception:  # noqa: BLE001 - a library failing on a file is a miss, not a crash
        return None


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def score_discourse(name: str, fn: Callable[[str], Views]) -> SetScore:
    score = SetScore(misses=[])
    for path in sorted((DISCOURSE / "emails").glob("*.txt")):
        expected = read(DISCOURSE / "trimmed" / path.name).strip()
        views = _run(fn, read(path))
        score.n += 1
        candidates = [views["reply"]] if name == "ours" and views else (
            [views["reply"], views["visible"]] if views else [])
        if any(c.strip() == expected for c in candidates):
            score.ok += 1
        else:
            score.misses.append(path.name)
    return score


def score_checks(folder: Path, checks: list[Check], fn: Callable[[str], Views]) -> SetScore:
    score = SetScore(misses=[])
    cache: dict[str, tuple[str, Views | None]] = {}
    for check in checks:
        if check[0] not in cache:
            text = read(folder / check[0])
            cache[check[0]] = (text, _run(fn, text))
        text, views = cache[check[0]]
        score.n += 1
        if views is not None and check_holds(views, text, check):
            score.ok += 1
        else:
            score.misses.append(" ".join(repr(c) if i == 3 else c for i, c in enumerate(check)))
    return score


def time_per_message(fn: Callable[[str], Views], texts: list[str], rounds: int = 5) -> float:
    """Median µs per call over the texts."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for text in texts:
            _run(fn, text)
        samples.append((time.perf_counter() - start) / max(1, len(texts)) * 1e6)
    samples.sort()
    return samples[len(samples) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--errors", action="store_true", help="list our misses")
    parser.add_argument("--json", action="store_true", help="print figures as JSON at the end")
    args = parser.parse_args(argv)
    if not CORPORA.is_dir():
        print(f"corpora not found at {CORPORA}: nothing to measure")
        return 0
    extractors = available()
    results: dict[str, Any] = {}
    sets = (("discourse", None), ("zapier", (ZAPIER, ZAPIER_CHECKS)), ("alfonsrv", (ALFONSRV, ALFONSRV_CHECKS)))
    texts = [read(p) for p in sorted((DISCOURSE / "emails").glob("*.txt"))]
    texts += [read(p) for p in sorted(ZAPIER.glob("*.txt")) + sorted(ALFONSRV.glob("*.txt"))
              if p.name != "pathological.txt"]
    for name, fn in extractors.items():
        if isinstance(fn, str):
            results[name] = {"error": fn}
            continue
        row: dict[str, Any] = {}
        for set_name, spec in sets:
            s = score_discourse(name, fn) if spec is None else score_checks(spec[0], spec[1], fn)
            row[set_name] = {"ok": s.ok, "n": s.n, "misses": s.misses}
        row["us_per_message"] = round(time_per_message(fn, texts, rounds=5 if name == "ours" else 1), 1)
        results[name] = row

    print(f"== reply extraction: {len(texts)} plain-text messages timed; corpora {CORPORA} ==")
    print(f"{'extractor':<20} {'discourse exact':>16} {'zapier checks':>14} {'alfonsrv checks':>16} {'µs/msg':>9}")
    for name, row in results.items():
        if "error" in row:
            print(f"{name:<20} {row['error']}")
            continue
        cells = [f"{row[s]['ok']}/{row[s]['n']}" for s, _ in sets]
        print(f"{name:<20} {cells[0]:>16} {cells[1]:>14} {cells[2]:>16} {row['us_per_message']:>9.0f}")
    mine = results["ours"]
    libs = {k: v for k, v in results.items() if k != "ours" and "error" not in v}
    verdicts = []
    rate = mine["discourse"]["ok"] / mine["discourse"]["n"]
    verdicts.append(("discourse exact ≥ 90%", rate >= TARGETS["discourse"], f"{rate:.1%}"))
    for s, _ in sets:
        best = max((v[s]["ok"] for v in libs.values()), default=-1)
        best_name = next((k for k, v in libs.items() if v[s]["ok"] == best), "-")
        verdicts.append((f"ahead of every library on {s}", mine[s]["ok"] > best,
                         f"ours {mine[s]['ok']} vs best {best} ({best_name})"))
    verdicts.append(("≤ 1 ms per message", mine["us_per_message"] <= TARGETS["us_per_message"],
                     f"{mine['us_per_message']:.0f} µs"))
    for label, passed, detail in verdicts:
        print(f"{'OK    ' if passed else 'MISSED'} {label}: {detail}")
    for s, _ in sets:
        best = max((v[s]["ok"] for v in libs.values()), default=-1)
        if mine[s]["ok"] == best == mine[s]["n"]:
            print(f"       ({s}: tied at the maximum, {best}/{best}: no extractor can be ahead there)")
    if args.errors:
        for s, _ in sets:
            for miss in mine[s]["misses"]:
                print(f"  ours missed [{s}] {miss}")
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
