"""Reply extraction: the customer's new text in a plain-text email body, kept apart from the
quoted history and the signature.

Pure and stdlib-only (no Flask, database or app imports), so it is benchmarked and tested alone
(``bench/reply.py``, ``tests/unit/email/test_reply.py``).

``extract_reply(text)`` returns a frozen :class:`ReplyParts`:

- ``reply``: the visible new text, without signature and without quoted history. A closing such as
  "Best regards,\\nJan" stays in it (the customer typed it); it is also exposed as ``closing`` so a
  caller that wants the bare body can take ``body``.
- ``signature``: a "-- " delimited block, a mailing-list footer under a long rule, or mobile
  signatures ("Sent from my iPhone", "Von meinem iPhone gesendet", "Envoyé de mon iPhone",
  "iPhoneから送信", …) at the end of the reply.
- ``quoted``: the quoted history: ``>`` quotes, "On … wrote:" headers in many languages and what
  follows them, Outlook header blocks (From:/Sent:/To:/Subject:, localised), "-----Original
  Message-----" and forwarded-message markers.
- ``full``: the text as given. ``elided`` is everything removed (signature and quoted), in text
  order, for a "show trimmed content" view.

Which view matches which convention: the Discourse trimmer's expected text is ``reply`` (mobile and
"-- " signatures removed, closings kept); talon's and mail-parser-reply's "with signature" view is
``visible_with_signature``; mail-parser-reply's ``body`` (closings counted as signature) is
``body``.

How it decides (line classes, then a few structural rules; every step is linear in the text):

1. Line endings are normalised. Each line is classified: empty, ``>`` quote, attribution header
   ("On … wrote:", "Am … schrieb …:", "Le … a écrit :", "El … escribió:", "Op … schreef …:",
   "Il … ha scritto:", "Em … escreveu:", "Den … skrev …:", "W dniu … pisze:", "Dnia … napisał(a):",
   "2022/01/01 9:00、… <…>のメッセージ:", "2016-10-24 15:36 GMT+02:00 Name <mail>:" …; headers
   wrapped by the client over up to six lines are joined first), forward/original-message marker,
   Outlook header field, long rule line, signature delimiter, mobile signature, or text.
2. The history starts at the first "strong" boundary that has new text above it (an Outlook header
   block, an original/forwarded-message marker, a rule line above a header block), or at an
   attribution header whose history is not answered inline (the rest holds no new text), or at a
   quote block that runs to the end. Everything from there on is ``quoted``.
3. Above that point, attribution headers are removed; a single quote block under such a header with
   the reply below it (bottom-posting) is removed too. Interleaved answers keep the quotes they
   answer, as context; a quote block without an attribution header that is answered below stays.
4. The signature is the trailing block from a "-- " delimiter or a long rule line (≤ 20 lines), or
   the trailing run of mobile-signature lines.
5. If nothing would be left (a message that is only a quote), the whole text is the reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ReplyParts", "extract_reply"]

# Lines longer than this are never headers, signatures or closings (keeps every regex cheap).
_MAX_MARKER_LEN = 400
# How many following lines a wrapped attribution header may span, and its joined length cap.
_HEADER_JOIN_LINES = 6
_HEADER_JOIN_CHARS = 250
_MAX_SIGNATURE_LINES = 20


@dataclass(frozen=True)
class ReplyParts:
    reply: str
    signature: str
    quoted: str
    full: str
    closing: str = ""
    elided: str = ""

    @property
    def visible_with_signature(self) -> str:
        """The reply followed by its signature (the convention of corpora that keep signatures)."""
        return "\n\n".join(p for p in (self.reply, self.signature) if p)

    @property
    def body(self) -> str:
        """The reply without its closing ("Regards,\\nJan"): the mail-parser-reply convention."""
        if self.closing and self.reply.endswith(self.closing):
            return self.reply[: -len(self.closing)].rstrip()
        return self.reply


# ---- line patterns ------------------------------------------------------------------------------

_WROTE_LATIN = (
    r"wrote|writes|said|says|schrieb|schrieben\s+Sie|geschrieben|a\s+[ée]crit|[ée]crit|"
    r"escribi[óo]|escreveu|schreef|geschreven|ha\s+scritto|scrisse|skrev|skrivit|"
    r"napisa[łl]\(a\)|napisa[łl]a|napisa[łl]|pisze|написал\(а\)|написала|написал|пише|"
    r"kirjoitti|napsal\(a\)|napsal|έγραψε|yazd[ıi]"
)
_WROTE_CJK = r"写道|寫道|のメッセージ|さんは書きました|は書きました"
_WROTE = rf"(?:(?<!\w)(?:{_WROTE_LATIN})(?!\w)|{_WROTE_CJK})"

_OPENER = re.compile(
    r"(?:On|At|Am|Le|El|Em|Op|Il(?:\s+giorno)?|Den|Dnia|Dňa|Dne|W\s+dniu|In\s+message|Στις|В|在)(?!\w)"
    r"|\d"  # a date first: "2016-10-24 15:36", "23 mar 2017", "2022年1月1日"
    r"|[^\W\d_]{2,12}\.?,?\s+\d",  # a weekday first: "ons 4 dec.", "søn. 30. apr.", "суббота, 14 марта"
    re.IGNORECASE,
)
_DATE_FIRST = re.compile(r"\d|[^\W\d_]{2,12}\.?,?\s+\d")
# Old Gmail: "2016-03-03 17:21 GMT+01:00 Some One" (no address, no colon).
_ISO_GMT_HEADER = re.compile(r"^\d{4}-\d\d-\d\d \d\d?:\d\d GMT[+-]\d\d:\d\d [^\W\d][\w .'-]{0,60}$")
_DATEISH = re.compile(r"\d{1,2}[:.h]\d{2}|(?<!\d)(?:19|20)\d{2}(?!\d)|\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}|\d+\s*年")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|&lt;|mailto:")
_WROTE_RE = re.compile(_WROTE, re.IGNORECASE)
# Plain substrings of the verbs above: a fast ``in`` test before any regex that searches for a verb.
_VERB_HINTS = ("wrote", "write", "said", "says", "schrieb", "geschrieben", "crit", "escribi", "escreveu",
               "schreef", "geschreven", "scritto", "scrisse", "skrev", "napisa", "pisze", "написал", "пише",
               "kirjoitti", "napsal", "έγραψε", "yazd", "写道", "寫道", "のメッセージ", "書きました")


_VERB_HINT_RE = re.compile("|".join(map(re.escape, _VERB_HINTS)))  # no IGNORECASE: 20x slower


def _has_verb(text: str) -> bool:
    return _VERB_HINT_RE.search(text.lower()) is not None
_HEADER_END_VERB = re.compile(rf"{_WROTE}[\s:：.>-]*$", re.IGNORECASE)
_HEADER_VERB_THEN_ADDRESS = re.compile(rf"{_WROTE}.{{0,160}}(?:@|<|&lt;).{{0,120}}[:：]\s*$", re.IGNORECASE)
_HEADER_VERB_ON_DATE = re.compile(
    rf"{_WROTE}\s+(?:on|am|le|el|em|op|il|den|w\s+dniu|dnia)(?!\w).{{0,100}}\d.{{0,60}}[:：]\s*$", re.IGNORECASE
)
_HEADER_DATE_ADDRESS = re.compile(r"<\s*[^<>@\s]+@[^<>\s]+>\s*[:：]?\s*$")
_HEADER_VIA = re.compile(r"^\S.{0,80}\svia\s.{1,80}\s(?:wrote|schrieb)\s*:?\s*$", re.IGNORECASE)
_LEADING_NOISE = re.compile(r"^[\s>*_-]+")

_QUOTE = re.compile(r"^\s*>")
_ADDRESS_TAIL = re.compile(r"^\s*>\s*(?:[:：]|wrote\b|schrieb\b|\S*@)", re.IGNORECASE)
_RULE = re.compile(r"^\s*\*?[-_=~—–]{5,}\*?\s*$")
_SIG_DELIMITER = re.compile(r"^(?:--|-- |—)\s*$")

_FORWARD_WORDS = (
    r"original(?:\s+message|e\s+Nachricht)?|forwarded(?:\s+message)?|reply\s+message|message\s+d'origine|"
    r"message\s+transf[ée]r[ée]|urspr[üu]ngliche\s+Nachricht|weitergeleitete\s+Nachricht|mensaje\s+original|"
    r"mensaje\s+reenviado|messaggio\s+originale|messaggio\s+inoltrato|mensagem\s+original|mensagem\s+encaminhada|"
    r"oorspronkelijk\s+bericht|doorgestuurd\s+bericht|ursprungligt\s+meddelande|vidarebefordrat\s+meddelande|"
    r"oprindelig\s+meddelelse|videresendt\s+meddelelse|opprinnelig\s+melding|videresendt\s+melding|"
    r"wiadomo[śs][ćc]\s+oryginalna|wiadomo[śs][ćc]\s+przekazana|元のメッセージ|転送メッセージ|原始邮件|转发邮件|"
    r"исходное\s+сообщение|пересылаемое\s+сообщение"
)
_FORWARD = re.compile(
    rf"^\s*[>*\s]*(?:-{{2,}}|_{{2,}}|={{2,}})\s*(?:{_FORWARD_WORDS})\s*:?\s*(?:-{{2,}}|_{{2,}}|={{2,}})\s*\*?\s*$"
    r"|^\s*[>*\s]*(?:Begin forwarded message|Début du message (?:transféré|réexpédié)|Anfang der weitergeleiteten "
    r"Nachricht|Inicio del mensaje reenviado|Início da mensagem reencaminhada|Inizio messaggio inoltrato|"
    r"Begin doorgestuurd bericht|Vidarebefordrat mejl)\s*:\s*$",
    re.IGNORECASE,
)

# Outlook header fields per language; ``_FROM_KEYS`` open a block.
_FROM_KEYS = r"From|Von|De|Expéditeur|Da|Van|Fra|Från|Od|差出人|发件人|發件人|寄件者|От"
_OTHER_KEYS = (
    r"Sent|Date|To|Cc|Bcc|Subject|Reply-To|Gesendet|Datum|An|Betreff|Antwort\s+an|Envoyé|À|A|Objet|"
    r"Destinataire|Répondre\s+à|Enviado(?:\s+el)?|Enviada\s+em|Fecha|Para|Asunto|Assunto|Responder\s+a|"
    r"Verzonden|Aan|Onderwerp|Beantwoorden\s+-\s+Aan|Inviato|Data|Oggetto|Risposta|Skickat|Till|Kopia|Ämne|"
    r"Sendt|Dato|Til|Kopi|Emne|Wysłano|Wysłane|Do|DW|Temat|送信日時|日付|宛先|件名|发送时间|收件人|主题|抄送|"
    r"寄件日期|收件者|主旨|Отправлено|Дата|Кому|Копия|Тема"
)
_FIELD = re.compile(rf"^\s*[*_]{{0,2}}(?:({_FROM_KEYS})|(?:{_OTHER_KEYS}))[*_]{{0,2}}\s*[:：]", re.IGNORECASE)

# Mobile / app signatures. "Sent from my X" counts only when X looks like a device or an app, so
# "Sent from my desk, is much easier than my phone." stays text.
_SENT_FROM = re.compile(
    r"^[(<\[\s]*(?:sent|envoyé|enviado|inviato|verzonden|verstuurd|gesendet|sendt|skickat|wysłane|wysłano)"
    r"\s+(?:from|via|with|by|using|de|depuis|desde|do|da|dal|met|vanaf|van|von|vom|mit|fra|från|z|ze)\s+(.*)$",
    re.IGNORECASE,
)
_DEVICE_WORDS = frozenset(
    "iphone ipad ipod android blackberry mobile mobil cell cellphone phone smartphone tablet device handy "
    "galaxy samsung htc pixel nokia huawei xiaomi motorola sony lg oneplus windows surface mail outlook "
    "yahoo gmail airmail mailbox spark protonmail aol icloud bluemail aquamail k-9 edison gmx thunderbird "
    "móvil movil telefono teléfono telefone telemóvel celular cellulare "
    "telefonino smartfon telefon mobiltelefon mobiltelefonen mobilgerät".split()
)
_POSSESSIVES = frozenset("my a an mon ma mein meinem meiner mijn mi meu mio min mojego moim mio il".split())
_MOBILE = re.compile(
    r"^[(<\s]*(?:"
    r"[\w-]+ from mobile"
    r"|from my (?:iphone|ipad|ipod|android|mobile|phone|samsung|galaxy|blackberry|cell)"
    r"|get (?:outlook|the outlook app) for"
    r"|envoy[ée] (?:de|depuis|avec) (?:mon|ma|un|une|yahoo|l'application|outlook)"
    r"|von meine[mr]? .{1,60} gesendet"
    r"|diese nachricht wurde von .{1,80} gesendet"
    r"|gesendet (?:von|mit|vom|via) "
    r"|inviato da"
    r"|sendt fra "
    r"|enviado (?:do|desde|de|con) "
    r"|verzonden (?:met|vanaf|van) "
    r"|verstuurd (?:vanaf|met|van) "
    r"|skickat från "
    r"|från min (?:iphone|ipad|mobil|telefon|android)"
    r"|wysłane z |wysłano z "
    r"|отправлено с "
    r"|從我的 ?iphone ?傳送|发自我的 ?iphone|.{0,20}から送信\s*$"
    r")",
    re.IGNORECASE,
)
_MARKDOWN_LINK = re.compile(r"\[([^\]\n]{1,200})\]\([^)\s]{1,500}\)")

_CLOSING = re.compile(
    r"^\s*(?:best(?:\s+regards|\s+wishes)?|kind(?:est)?\s+regards|warm(?:est)?\s+regards|regards|many\s+thanks|"
    r"thanks(?:\s+again|\s+a\s+lot|\s+and\s+regards|\s+&\s+regards|\s+in\s+advance)?|thank\s+you(?:\s+very\s+much)?|"
    r"cheers|sincerely|yours(?:\s+sincerely|\s+truly|\s+faithfully)?|br|"
    r"mit\s+freundlichen\s+gr(?:ü|ue)(?:ß|ss)en|freundliche\s+gr(?:ü|ue)(?:ß|ss)e|viele\s+gr(?:ü|ue)(?:ß|ss)e|"
    r"beste\s+gr(?:ü|ue)(?:ß|ss)e|liebe\s+gr(?:ü|ue)(?:ß|ss)e|gr(?:ü|ue)(?:ß|ss)e|gru(?:ß|ss)|lg|mfg|vg|danke|"
    r"cordialement|bien\s+(?:à\s+vous|cordialement)|salutations(?:\s+distinguées)?|merci(?:\s+beaucoup)?|"
    r"saludos(?:\s+cordiales)?|un\s+saludo|atentamente|gracias|"
    r"met\s+vriendelijke\s+groet(?:en)?|vriendelijke\s+groet(?:en)?|groeten|groet|mvg|"
    r"cordiali\s+saluti|distinti\s+saluti|saluti|grazie|"
    r"atenciosamente|cumprimentos|abraços|obrigad[oa]|"
    r"med\s+v[äa]nlig(?:a)?\s+h[äa]lsning(?:ar)?|v[äa]nliga\s+h[äa]lsningar|h[äa]lsningar|"
    r"med\s+venlig\s+hilsen|venlig\s+hilsen|vennlig\s+hilsen|hilsen|mvh|kh|"
    r"pozdrawiam|z\s+powa[żz]aniem|pozdrowienia|dzi[ęe]kuj[ęe]|"
    r"よろしくお願い(?:いた)?します|以上(?:です)?"
    r")(?:\s*[,.!]+)?(?:\s*[-–]?\s*[A-ZÀ-ÖØ-Þ][\w.'’-]*(?:\s+[A-ZÀ-ÖØ-Þ][\w.'’-]*){0,2})?\s*[,.!]?\s*$",
    re.IGNORECASE,
)
_NAME_SIGNOFF = re.compile(
    r"^\s*[-/~]\s?[A-ZÀ-ÖØ-Þ][\w.'’-]*(?:\s(?:[A-ZÀ-ÖØ-Þ][\w.'’-]*|de|van|von|der|den|da|di|du|le|la|dos|del)){0,3}\s*$")

# Line classes.
EMPTY, QUOTE, HEADER, FORWARD, RULE, FIELD, FROM_FIELD, DELIM, MOBILE, TEXT = "eqhfrxFdmt"


def _is_mobile_signature(line: str) -> bool:
    if len(line) > 160:
        return False
    stripped = _MARKDOWN_LINK.sub(r"\1", line).strip()
    if _MOBILE.match(stripped):
        return True
    match = _SENT_FROM.match(stripped)
    if not match:
        return False
    words = match.group(1).replace("(", " ").replace(")", " ").split()
    if not words or len(stripped.split()) > 14:
        return False
    possessive = words[0].lower() in _POSSESSIVES
    if possessive:
        if len(words) < 2:
            return False
        words = words[1:]
    head = re.sub(r"[^\w-]", "", words[0])
    if not head:
        return False
    lowered = head.lower()
    if lowered in _DEVICE_WORDS or lowered.split("-")[0] in _DEVICE_WORDS or re.match(r"i[A-Z]", head):
        return True
    # "Sent from my TI-85" / "Sent from my Verizon Wireless BlackBerry" name a device; without "my"
    # a capital is not enough ("Sent by DHL on Monday", "Sent from Berlin" are news, not signatures).
    return possessive and (head[0].isupper() or head[0].isdigit())


def _is_header(candidate: str) -> bool:
    """Is this (possibly joined) line an attribution header like "On <date>, <someone> wrote:"?"""
    text = _LEADING_NOISE.sub("", candidate).rstrip()
    if not text or len(text) > _HEADER_JOIN_CHARS:
        return False
    # Cheap exit for ordinary lines: a header ends with ":", "----", the verb itself, or (dated
    # first) with an address in angle brackets.
    last = text[-1]
    verb = _has_verb(text)
    if not ((verb and (last in ":：" or text.endswith("--") or _HEADER_END_VERB.search(text[-48:])))
            or (last in ":：>" and _DATE_FIRST.match(text))):
        return bool(_ISO_GMT_HEADER.match(text))
    if not verb:  # only the dated-address form is left
        return bool(_DATEISH.search(text) and _HEADER_DATE_ADDRESS.search(text) and len(text) < 200)
    has_address = bool(_EMAIL.search(text))
    opener = bool(_OPENER.match(text))
    dated = bool(_DATEISH.search(text))
    if _HEADER_END_VERB.search(text):
        if has_address or (opener and dated) or _HEADER_VIA.match(text):
            return True
    if opener and dated and has_address and _HEADER_VERB_THEN_ADDRESS.search(text):
        return True
    if has_address and _HEADER_VERB_ON_DATE.search(text):
        return True
    # "2016-10-24 15:36 GMT+02:00 Name <mail>:", "2013/7/20 sam via Meta <mail>", "2022年1月1日(金) 9:00 名前 <mail>:"
    return bool(_DATE_FIRST.match(text) and dated and _HEADER_DATE_ADDRESS.search(text) and len(text) < 200)


def _may_end_header(line: str) -> bool:
    """Cheap test: could a wrapped header end on this line (":", "----", or the verb)?"""
    text = line.rstrip()
    if not text or len(text) > _MAX_MARKER_LEN:
        return False
    last = text[-1]
    return (last in ":：" or text.endswith("--")
            or (last.isalpha() and _has_verb(text[-48:]) and _HEADER_END_VERB.search(text[-48:]) is not None))


def _join_candidate(lines: list[str], ends: list[bool], i: int) -> int:
    """If an attribution header starts at line i (possibly wrapped over a few lines), the index
    after its last line; else i. ``ends[k]``: could a header end on line k."""
    line = lines[i]
    if len(line) > _MAX_MARKER_LEN or _QUOTE.match(line):
        return i  # a header inside a quote is quoted history either way
    if (ends[i] or line.rstrip().endswith(">") or line[:1].isdigit()) and _is_header(line):
        return i + 1
    last = min(len(lines), i + 1 + _HEADER_JOIN_LINES)
    if not any(ends[i + 1:last]):
        return i
    # A wrapped header begins like one: an opener word or a date with a date or an address in the
    # same line ("On this day" does not), or an address with the verb ("Max <m@x> schrieb am Fr., 28.").
    start = _LEADING_NOISE.sub("", line)
    has_address = "<" in line or bool(_EMAIL.search(line))
    if not ((_OPENER.match(start) and (has_address or _DATEISH.search(line)))
            or (has_address and _has_verb(line) and _WROTE_RE.search(line))):
        return i
    joined = line.rstrip()
    for j in range(i + 1, last):
        nxt = lines[j]
        # A wrapped line of an unquoted header starts with ">" only as the tail of an address.
        if _QUOTE.match(nxt) and not _ADDRESS_TAIL.match(nxt):
            return i
        piece = nxt.strip()
        if joined.endswith("="):  # quoted-printable soft break left in the text
            joined = joined[:-1] + piece
        elif piece:
            joined = f"{joined} {piece}"
        if len(joined) > _HEADER_JOIN_CHARS:
            return i
        if ends[j]:
            # A header ends on the first line that can end one: one test per start line, unless
            # that line is a header by itself (then this one is just text above it).
            if not piece or (_OPENER.match(piece) and _is_header(nxt)):
                return i
            return j + 1 if _is_header(joined) else i
        if piece.endswith((".", "!", "?")) and len(piece) > 12:
            return i  # a sentence ends here: prose, not a wrapped header
        if piece and _FIELD.match(nxt):
            return i
    return i


def _classify(lines: list[str]) -> list[str]:
    kinds = [TEXT] * len(lines)
    ends = [_may_end_header(line) for line in lines]
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        if not line.strip():
            kinds[i] = EMPTY
            i += 1
            continue
        end = _join_candidate(lines, ends, i)
        if end > i:
            for k in range(i, end):
                kinds[k] = QUOTE if _QUOTE.match(lines[i]) else HEADER
            i = end
            continue
        if _QUOTE.match(line):
            kinds[i] = QUOTE
        elif len(line) <= _MAX_MARKER_LEN and _FORWARD.match(line):
            kinds[i] = FORWARD
        elif _SIG_DELIMITER.match(line):
            kinds[i] = DELIM
        elif _RULE.match(line):
            kinds[i] = RULE
        elif len(line) <= _MAX_MARKER_LEN and (field := _FIELD.match(line)):
            kinds[i] = FROM_FIELD if field.group(1) else FIELD
        elif _is_mobile_signature(line):
            kinds[i] = MOBILE
        i += 1
    # A line left unquoted inside a quote block (a client's re-wrap, a quoted-printable soft break)
    # is part of the quote.
    for k in range(1, len(lines) - 1):
        if kinds[k] == TEXT and kinds[k - 1] == QUOTE and kinds[k + 1] == QUOTE and len(lines[k]) < 80:
            kinds[k] = QUOTE
    return kinds


def _next_nonempty(kinds: list[str], i: int) -> int:
    while i < len(kinds) and kinds[i] == EMPTY:
        i += 1
    return i


def _field_block(kinds: list[str], i: int) -> int:
    """Length in lines of an Outlook header block starting at i (0 if none): at least two fields,
    one of them a From-like field, at most one wrapped (text) line between fields."""
    n = len(kinds)
    j, fields, has_from, loose = i, 0, False, 0
    while j < n:
        kind = kinds[j]
        if kind in (FIELD, FROM_FIELD):
            fields += 1
            has_from = has_from or kind == FROM_FIELD
            loose = 0
        elif kind in (TEXT, HEADER) and fields and loose == 0:
            loose = 1  # a wrapped value ("To: a, b,\n c")
        else:
            break
        j += 1
    if loose:
        j -= 1
    return j - i if fields >= 2 and has_from and kinds[i] in (FIELD, FROM_FIELD) else 0


def _only_history_after(kinds: list[str], i: int) -> bool:
    """True when lines i.. hold no new text: quotes, headers, blanks, signatures, or a block under a
    signature delimiter / rule line (a list footer)."""
    for k in range(i, len(kinds)):
        kind = kinds[k]
        if kind in (DELIM, RULE):
            return True
        if kind in (TEXT, FIELD, FROM_FIELD):
            return False
    return True


def _strong_boundary(kinds: list[str], i: int) -> bool:
    kind = kinds[i]
    if kind == FORWARD:
        return True
    if kind in (FIELD, FROM_FIELD):
        return _field_block(kinds, i) > 0
    if kind == RULE:
        nxt = _next_nonempty(kinds, i + 1)
        return nxt < len(kinds) and (kinds[nxt] in (HEADER, FORWARD) or _field_block(kinds, nxt) > 0)
    return False


def _find_cut(kinds: list[str], start: int) -> tuple[int, set[int]]:
    """Where the quoted history starts (len(kinds) if nowhere), and the lines above it that belong
    to history answered below (attribution headers and the quote block under a lone header)."""
    n = len(kinds)
    removed: set[int] = set()
    seen_text = False
    i = start
    while i < n:
        kind = kinds[i]
        if kind == EMPTY:
            i += 1
            continue
        if _strong_boundary(kinds, i):
            if seen_text:
                return i, removed
            # History markers above any new text (a forwarded header block at the top): drop them.
            block = _field_block(kinds, i) if kind in (FIELD, FROM_FIELD) else 1
            removed.update(range(i, i + max(1, block)))
            i += max(1, block)
            continue
        if kind == HEADER:
            j = i
            while j < n and kinds[j] == HEADER:
                j += 1
            body = _next_nonempty(kinds, j)
            if body < n and kinds[body] != QUOTE:
                # Unquoted history under the header (Outlook, mobile clients): the rest is history.
                if seen_text:
                    return i, removed
                removed.update(range(i, j))
                i = j
                continue
            q_end = body
            while q_end < n and kinds[q_end] in (QUOTE, EMPTY):
                q_end += 1
            if _only_history_after(kinds, q_end):
                if seen_text:
                    return i, removed
            removed.update(range(i, j))
            # Bottom-posting under one quote block: that block is history too. Interleaved answers
            # (another quote block answered further down) keep their quotes as context.
            later_quote = any(kinds[k] == QUOTE for k in range(q_end, n)) and not _only_history_after(
                kinds, _first_quote(kinds, q_end))
            if not later_quote:
                removed.update(k for k in range(body, q_end) if kinds[k] == QUOTE)
            i = q_end
            continue
        if kind == QUOTE:
            q_end = i
            while q_end < n and kinds[q_end] in (QUOTE, EMPTY):
                q_end += 1
            if seen_text and _only_history_after(kinds, q_end):
                return i, removed
            i = q_end
            continue
        seen_text = seen_text or kind in (TEXT, MOBILE, DELIM, FIELD, FROM_FIELD, RULE)
        i += 1
    return n, removed


def _first_quote(kinds: list[str], i: int) -> int:
    while i < len(kinds) and kinds[i] != QUOTE:
        i += 1
    return i


def _find_signature(lines: list[str], kinds: list[str], keep: list[int]) -> int:
    """Position (in ``keep``) where the signature starts, or len(keep)."""
    n = len(keep)
    sig = n
    nonempty_after = 0
    # Walk up from the end: a "-- " delimiter with a short block under it starts a signature; so does
    # a long rule line whose block looks like a footer (an address or a link: list footers,
    # disclaimers), not like a last paragraph set off by a rule.
    footer_like = False
    for pos in range(n - 1, -1, -1):
        kind = kinds[keep[pos]]
        line = lines[keep[pos]]
        if kind == DELIM and nonempty_after <= _MAX_SIGNATURE_LINES:
            sig = pos
        elif kind == RULE and 0 < nonempty_after <= _MAX_SIGNATURE_LINES and footer_like:
            sig = pos
        footer_like = footer_like or "@" in line or "http" in line or "www." in line
        if kind != EMPTY:
            nonempty_after += 1
        if nonempty_after > _MAX_SIGNATURE_LINES + 1:
            break
    # The trailing run of mobile signatures (blank lines between them allowed).
    pos = min(sig, n) - 1
    mobile_start = None
    while pos >= 0 and kinds[keep[pos]] in (EMPTY, MOBILE):
        if kinds[keep[pos]] == MOBILE:
            mobile_start = pos
        pos -= 1
    if mobile_start is not None:
        sig = mobile_start
    return sig


def _find_closing(lines: list[str]) -> int:
    """Index in ``lines`` (the reply) where a closing ("Regards,\\nJan", "-Jan") starts, or len."""
    nonempty = [k for k, line in enumerate(lines) if line.strip()]
    if len(nonempty) < 2:
        return len(lines)
    window = nonempty[-6:]
    for k in window:
        if k == nonempty[0]:
            continue
        line = lines[k]
        if len(line) > 80:
            continue
        if _CLOSING.match(line) or (_NAME_SIGNOFF.match(line) and k == nonempty[-1]):
            after = [lines[m] for m in nonempty if m > k]
            if all(len(a) <= 60 for a in after):
                return k
    return len(lines)


def _join(lines: list[str]) -> str:
    return "\n".join(lines).strip()


def extract_reply(text: str) -> ReplyParts:
    """Split a plain-text email body into the new reply, its signature and the quoted history."""
    full = text or ""
    normalized = full.replace("\r\n", "\n").replace("\r", "\n")
    if not normalized.strip():
        return ReplyParts(reply="", signature="", quoted="", full=full)
    lines = normalized.split("\n")
    kinds = _classify(lines)
    cut, removed = _find_cut(kinds, 0)
    keep = [k for k in range(cut) if k not in removed]
    sig_pos = _find_signature(lines, kinds, keep)
    reply_idx, sig_idx = keep[:sig_pos], keep[sig_pos:]
    reply_lines = [lines[k] for k in reply_idx]
    reply = _join(reply_lines)
    signature = _join([lines[k] for k in sig_idx])
    sig_set = set(sig_idx)
    quoted_idx = sorted(removed) + list(range(cut, len(lines)))
    quoted = _join([lines[k] for k in quoted_idx])
    if not reply and not signature:
        # Only history (a bare quote): show it all rather than nothing.
        return ReplyParts(reply=normalized.strip(), signature="", quoted="", full=full)
    elided = _join([lines[k] for k in range(len(lines)) if k in sig_set or k in removed or k >= cut])
    closing_at = _find_closing(reply_lines)
    closing = _join(reply_lines[closing_at:]) if closing_at < len(reply_lines) else ""
    return ReplyParts(reply=reply, signature=signature, quoted=quoted, full=full, closing=closing, elided=elided)
