"""Letter text: safe {placeholder} substitution, the default wording in each language, letter HTML.

Merchant text is never a template: it is split on ``{name}`` placeholders, every literal piece and
every value is escaped, and nothing else is interpreted. So merchant text can neither run code
(there is no template language to run) nor inject markup (everything is escaped).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

PLACEHOLDER = re.compile(r"\{([a-z_]{1,30})\}")

# name -> what the merchant sees in the form's help
PLACEHOLDERS: dict[str, object] = {
    "first_name": _l("customer's first name"),
    "merchant": _l("your business name"),
    "amount": _l("purchase amount"),
    "date": _l("purchase date"),
    "points_earned": _l("points earned with the purchase"),
    "points_balance": _l("points balance"),
    "status": _l("customer's status"),
    "certificate": _l("certificate received"),
    "bonus_code": _l("enclosed partner code"),
    "bonus_partner": _l("partner who gives the code"),
    "wallet_url": _l("link to the customer's card"),
}

DEFAULTS: dict[str, dict[str, tuple[str, str]]] = {
    "thanks": {
        "en": (
            "Thank you for your visit, {first_name}!",
            "Dear {first_name},\n\nthank you for choosing {merchant} on {date}. "
            "Your purchase of {amount} earned you {points_earned} points; "
            "your balance is now {points_balance}.\n\n"
            "If anything is not as it should be, just reply to this letter or call us: "
            "we will put it right.\n\nWarm regards,\n{merchant}",
        ),
        "ru": (
            "Спасибо за визит, {first_name}!",
            "Здравствуйте, {first_name}!\n\nСпасибо, что выбрали {merchant} {date}. "
            "За покупку на {amount} вы получили {points_earned} баллов; "
            "теперь на вашей карте {points_balance}.\n\n"
            "Если что-то не так, просто ответьте на это письмо или позвоните нам — "
            "мы всё исправим.\n\nС теплом,\n{merchant}",
        ),
        "kk": (
            "Келгеніңізге рақмет, {first_name}!",
            "Сәлеметсіз бе, {first_name}!\n\n{merchant} таңдағаныңыз үшін рақмет ({date}). "
            "{amount} сомасындағы сатып алуыңыз үшін {points_earned} ұпай алдыңыз; "
            "енді картаңызда {points_balance} ұпай бар.\n\n"
            "Бір нәрсе көңіліңізден шықпаса, осы хатқа жауап беріңіз немесе бізге қоңырау шалыңыз — "
            "бәрін түзетеміз.\n\nҚұрметпен,\n{merchant}",
        ),
        "bg": (
            "Благодарим ви за посещението, {first_name}!",
            "Здравейте, {first_name},\n\nблагодарим ви, че избрахте {merchant} на {date}. "
            "С покупката си за {amount} спечелихте {points_earned} точки; "
            "балансът ви вече е {points_balance}.\n\n"
            "Ако нещо не е наред, просто отговорете на това писмо или ни се обадете — "
            "ще го оправим.\n\nСърдечни поздрави,\n{merchant}",
        ),
    },
    "reassurance": {
        "en": (
            "How are you getting on, {first_name}?",
            "Dear {first_name},\n\na day has passed since your visit to {merchant}. "
            "Here is what to expect and how to take care of your purchase: "
            "follow the care notes you received, and give it a day or two to settle.\n\n"
            "Questions? Reply to this letter or drop by: we are happy to help.\n\n{merchant}",
        ),
        "ru": (
            "Как у вас дела, {first_name}?",
            "Здравствуйте, {first_name}!\n\nПрошли сутки после вашего визита в {merchant}. "
            "Вот чего ожидать и как ухаживать за покупкой: следуйте памятке, которую вы получили, "
            "и дайте ей день-два.\n\n"
            "Есть вопросы? Ответьте на это письмо или заходите — мы рады помочь.\n\n{merchant}",
        ),
        "kk": (
            "Қалыңыз қалай, {first_name}?",
            "Сәлеметсіз бе, {first_name}!\n\n{merchant} жеріне келгеніңізге бір күн өтті. "
            "Нені күту керек және сатып алғаныңызды қалай күту керек: алған жадынамаңыздағы "
            "кеңестерді орындап, оған бір-екі күн уақыт беріңіз.\n\n"
            "Сұрақтарыңыз бар ма? Осы хатқа жауап беріңіз немесе бізге соғыңыз — көмектесуге қуаныштымыз.\n\n{merchant}",
        ),
        "bg": (
            "Как сте, {first_name}?",
            "Здравейте, {first_name},\n\nмина един ден от посещението ви в {merchant}. "
            "Ето какво да очаквате и как да се грижите за покупката си: следвайте указанията, "
            "които получихте, и ѝ дайте ден-два.\n\n"
            "Имате въпроси? Отговорете на това писмо или се отбийте — с радост ще помогнем.\n\n{merchant}",
        ),
    },
    "winback": {
        "en": (
            "We miss you, {first_name}",
            "Dear {first_name},\n\nit has been a while since your last visit to {merchant}. "
            "You still have {points_balance} points waiting on your card: {wallet_url}\n\n"
            "We would be glad to see you again.\n\n{merchant}",
        ),
        "ru": (
            "Мы скучаем, {first_name}",
            "Здравствуйте, {first_name}!\n\nДавно вас не было в {merchant}. "
            "На вашей карте ждут {points_balance} баллов: {wallet_url}\n\n"
            "Будем рады видеть вас снова.\n\n{merchant}",
        ),
        "kk": (
            "Сізді сағындық, {first_name}",
            "Сәлеметсіз бе, {first_name}!\n\n{merchant} жеріне соңғы келгеніңізге біраз уақыт болды. "
            "Картаңызда сізді {points_balance} ұпай күтіп тұр: {wallet_url}\n\n"
            "Сізді қайта көруге қуаныштымыз.\n\n{merchant}",
        ),
        "bg": (
            "Липсвате ни, {first_name}",
            "Здравейте, {first_name},\n\nотдавна не сте идвали в {merchant}. "
            "В картата ви ви чакат {points_balance} точки: {wallet_url}\n\n"
            "Ще се радваме да ви видим отново.\n\n{merchant}",
        ),
    },
}


def default_template(kind: str, locale: str) -> tuple[str, str]:
    by_locale = DEFAULTS[kind]
    return by_locale.get((locale or "en")[:2], by_locale["en"])


def unknown_placeholders(text: str) -> list[str]:
    return sorted({name for name in PLACEHOLDER.findall(text or "") if name not in PLACEHOLDERS})


_SENTENCE_END = re.compile(r"(?<=[.!?…])[ \t]+")


def _missing(name: str, values: dict[str, object]) -> bool:
    return name in PLACEHOLDERS and values.get(name) in (None, "")


def without_empty_sentences(template: str, values: dict[str, object]) -> tuple[str, list[str]]:
    """The template without each sentence that names a placeholder with no value ("A gift from
    our neighbour {bonus_partner}: code {bonus_code}." when the code pool is empty), and the
    names of those placeholders. Sentences end at ".", "!", "?" or "…" followed by a space, or at
    the end of a line; lines keep their breaks."""
    left_out: list[str] = []
    lines = []
    for line in (template or "").replace("\r\n", "\n").split("\n"):
        kept = []
        for sentence in _SENTENCE_END.split(line):
            empty = [name for name in PLACEHOLDER.findall(sentence) if _missing(name, values)]
            if empty:
                left_out.extend(name for name in empty if name not in left_out)
                continue
            kept.append(sentence)
        lines.append(" ".join(kept))
    return "\n".join(lines), left_out


def fill_text(template: str, values: dict[str, object]) -> str:
    """Plain-text substitution: known placeholders get their value, anything else stays as typed;
    a sentence whose placeholder has no value is left out."""
    template, _left_out = without_empty_sentences(template, values)

    def replace(match: re.Match) -> str:
        name = match.group(1)
        return str(values.get(name, "")) if name in PLACEHOLDERS else match.group(0)

    return PLACEHOLDER.sub(replace, template or "")


def fill_html(template: str, values: dict[str, object]) -> Markup:
    """HTML of a letter body: escaped text and values, blank lines as paragraphs, breaks kept;
    a sentence whose placeholder has no value is left out."""
    template, _left_out = without_empty_sentences(template, values)
    paragraphs = re.split(r"\n\s*\n", (template or "").replace("\r\n", "\n").strip())
    html = []
    for paragraph in paragraphs:
        if not paragraph.strip():
            continue
        pieces: list[Markup] = []
        position = 0
        for match in PLACEHOLDER.finditer(paragraph):
            pieces.append(escape(paragraph[position : match.start()]))
            name = match.group(1)
            pieces.append(escape(values.get(name, "")) if name in PLACEHOLDERS else escape(match.group(0)))
            position = match.end()
        pieces.append(escape(paragraph[position:]))
        text = Markup("").join(pieces)
        html.append(Markup("<p>") + Markup("<br>\n").join(text.split("\n")) + Markup("</p>"))
    return Markup("\n").join(html)


@dataclass(frozen=True)
class Rendered:
    """A letter with its placeholders filled: subject, plain text and HTML body."""

    subject: str
    text: str
    html: Markup
    left_out: tuple[str, ...] = ()  # placeholders without a value: their sentences were left out


def render_letter(subject: str, body: str, values: dict[str, object]) -> Rendered:
    # Subjects go into a mail header: no line breaks, whatever the merchant or values contain.
    filled_subject = " ".join(fill_text(subject, values).split())
    left_out = without_empty_sentences(subject, values)[1] + without_empty_sentences(body, values)[1]
    return Rendered(filled_subject, fill_text(body, values), fill_html(body, values),
                    tuple(dict.fromkeys(left_out)))
