"""Explicit "remember / note / save that …" requests in the 18 languages of the student.

The route classifier sends most of them to ``action``; a message that it sends to ``recall``
but that plainly asks to store something is stored anyway (see ActionMemoryLookup), so the
user's fact is never silently dropped. Questions ("do you remember …?") are not requests.
"""
import re
import unicodedata

# Requests that start with one of these (after an optional "please"/"hey bot,")…
LEADING = [
    # en
    r"remember that", r"remember:", r"please remember", r"note that", r"note:", r"make a note that",
    r"take a note that", r"save that", r"save a note that", r"keep in mind that", r"don't forget that",
    r"write down that", r"store that",
    # es
    r"recuerda que", r"recuérdame que", r"apunta que", r"anota que", r"guarda que", r"toma nota de que",
    r"no olvides que", r"ten en cuenta que",
    # fr
    r"souviens-toi que", r"rappelle-toi que", r"retiens que", r"note que", r"enregistre que",
    r"prends note que", r"n'oublie pas que", r"garde en mémoire que",
    # de
    r"merk dir", r"merke dir", r"notiere", r"notier", r"speichere", r"speicher", r"vergiss nicht, dass", r"behalte, dass",
    # pt
    r"lembre que", r"lembre-se de que", r"lembre-se que", r"lembra que", r"anote que", r"anota que",
    r"guarde que", r"grave que", r"salve que", r"não esqueça que",
    # it
    r"ricorda che", r"ricordati che", r"annota che", r"segna che", r"salva che", r"prendi nota che",
    r"memorizza che", r"non dimenticare che", r"tieni a mente che",
    # nl
    r"onthoud dat", r"onthoud:", r"noteer dat", r"sla op dat", r"bewaar dat", r"vergeet niet dat",
    # pl
    r"zapamiętaj", r"zanotuj", r"zapisz", r"nie zapomnij, że", r"pamiętaj, że",
    # ru
    r"запомни", r"запиши", r"сохрани", r"заметь, что", r"не забудь, что",
    # tr
    r"unutma", r"not et", r"şunu kaydet", r"şunu not al", r"aklında tut",
    # id
    r"ingat bahwa", r"ingatlah bahwa", r"ingat ya", r"catat bahwa", r"catat:", r"simpan bahwa",
    r"tolong ingat", r"tolong catat", r"jangan lupa bahwa",
    # vi
    r"hãy nhớ", r"nhớ rằng", r"nhớ giúp", r"ghi nhớ", r"ghi lại", r"ghi chú", r"lưu lại", r"đừng quên",
    # ar
    r"تذكر أن", r"تذكّر أن", r"تذكر ان", r"احفظ أن", r"احفظ ان", r"سجل أن", r"سجّل أن", r"دوّن أن",
    r"دون أن", r"لا تنس أن",
    # hi
    r"याद रखना", r"याद रखो", r"याद रखें", r"नोट करो", r"नोट कर लो", r"नोट करें", r"सेव करो",
    # th
    r"จำไว้ว่า", r"จำไว้นะว่า", r"ช่วยจำ", r"จดไว้ว่า", r"บันทึกว่า", r"บันทึกไว้ว่า",
    # zh
    r"记住", r"请记住", r"帮我记住", r"记一下", r"帮我记一下", r"记下", r"帮我记下", r"保存", r"請記住", r"記住",
    # ja
    r"覚えておいて", r"メモして", r"記録して",
    # ko
    r"기억해", r"메모해", r"저장해",
]
# …or, in languages that put the verb last, end with one of these.
TRAILING = [
    # ja
    r"って覚えておいて", r"と覚えておいて", r"を覚えておいて", r"覚えておいて", r"覚えといて", r"とメモして",
    r"をメモして", r"メモしておいて", r"と記録して", r"保存して",
    # ko
    r"기억해 줘", r"기억해줘", r"기억해 둬", r"기억해둬", r"기억해 주세요", r"기억해주세요", r"메모해 줘",
    r"메모해줘", r"저장해 줘", r"저장해줘", r"적어 둬", r"적어둬", r"적어 줘", r"적어줘", r"기억해", r"기억해 둬요",
    r"메모해 둬", r"메모해", r"저장해",
    # tr
    r"hatırla", r"aklında tut", r"not et", r"kaydet", r"not al", r"unutma",
    # hi
    r"याद रखना", r"याद रखो", r"याद रखें", r"याद रख लो", r"नोट कर लो", r"नोट करो", r"सेव कर लो",
    # zh / th
    r"记住", r"记下来", r"記住", r"จำไว้", r"จำไว้นะ", r"จดไว้",
]
PREFIX = re.compile(r"^(?:(?:please|pls|hey|ok|okay|por favor|s'il te plaît|bitte|per favore|"
                    r"alsjeblieft|proszę|пожалуйста|lütfen|tolong|làm ơn|من فضلك|कृपया|ช่วย|请|請)[\s,:!]+)?")
# Scripts written without spaces between words: no word boundary is needed next to them.
SPACELESS = "\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
BOUNDARY = rf"(?:$|(?=\W)|(?<=[{SPACELESS}])|(?=[{SPACELESS}]))"


def alternation(phrases):
    # Longest first, so "notiere" is tried before "notier".
    return "(?:" + "|".join(re.escape(p) for p in sorted(set(phrases), key=len, reverse=True)) + ")"


LEAD_RE = re.compile(PREFIX.pattern + alternation(LEADING) + BOUNDARY, re.IGNORECASE)
TRAIL_RE = re.compile(rf"(?:(?<=[\s,{SPACELESS}])|(?<=\W)){alternation(TRAILING)}[\s.!。！~요]*$", re.IGNORECASE)
QUESTION_END = ("?", "？", "؟")
# A store request has something to store besides the verb.
MIN_CONTENT_CHARS = 6


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFC", text).strip().lower()
    return text.replace("’", "'").replace("`", "'")


def is_explicit_store(text: str) -> bool:
    """Whether ``text`` plainly asks to remember / note / save something (and is not a question)."""
    if not isinstance(text, str):
        return False
    t = normalize(text)
    if len(t) < MIN_CONTENT_CHARS or t.endswith(QUESTION_END):
        return False
    lead = LEAD_RE.match(t)
    if lead:
        return len(t) - lead.end() >= 3
    trail = TRAIL_RE.search(t)
    return bool(trail) and trail.start() >= 3
