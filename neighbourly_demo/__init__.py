"""The demo neighbourhood: one street of merchants, their staff, customers and six months of sales.

Outside the core package on purpose: the core never imports it. ``flask --app webapp demo`` comes
from ``neighbourly_demo.cli``, which the app factory loads by name (``Config.CLI_COMMANDS``).
Every sale goes through the purchase service, so the demo writes exactly what a till writes.
"""

from __future__ import annotations

import io
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import force_locale
from PIL import Image, ImageColor, ImageDraw, ImageFont
from sqlalchemy import select

from webapp.errors import NeighbourlyError
from webapp.extensions import db
from webapp.models import (
    ConsentRecord,
    Membership,
    Merchant,
    Network,
    Purchase,
    StaffRole,
    User,
)
from webapp.models.base import utcnow
from webapp.plugins import hooks_for, is_enabled, only_plugin
from webapp.rules import points_limit
from webapp.schema import ensure_schema
from webapp.services import accounts, codes, photos, price_items
from webapp.services import memberships as membership_service
from webapp.services import merchants as merchant_service
from webapp.services.ledger import bump_weekly_stats, week_start
from webapp.services.purchases import PurchaseDraft, record_purchase
from webapp.unit_of_work import unit_of_work

DEMO_PASSWORD = "neighbourly-demo"  # noqa: S105 - published on purpose: it is the demo
NETWORK_SLUG = "abay-street"
NETWORK_NAME = "Улица Абая"
OPERATOR_EMAIL = "operator@abay-street.example.com"
SEED = 20261101
HISTORY_DAYS = 182
KEY_PREFIX = "demo-"
ALMATY = ZoneInfo("Asia/Almaty")  # the demo network's zone
PLUGIN_MERCHANTS = 4  # how many merchants get every installed plugin switched on
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu")

Echo = Callable[[str], None]


@dataclass(frozen=True)
class DemoMerchant:
    name: str
    category: str
    domain: str  # owner@<domain>, cashier@<domain>
    house: int  # number on Abay Street
    owner: str
    cashier: str
    description: str
    hours: str
    prices: tuple[tuple[str, int], ...]  # (item, whole tenge)
    cashback_bp: int
    max_points_share_pct: int
    popularity: float  # relative share of the street's purchases
    colours: tuple[str, str]  # picture gradient, top to bottom


# Categories of the street's price items: the street search puts items of one category side by
# side ("кофе" compares the coffee house's cups with the bakery's americano).
ITEM_CATEGORIES = {
    **dict.fromkeys(("Капучино", "Флэт уайт", "Раф с халвой", "Кофе американо"), "Кофе"),
    **dict.fromkeys(("Круассан", "Булочка с корицей", "Самса с говядиной", "Тандырная лепёшка",
                     "Медовик, кусок", "Пакет баурсаков", "Ржаной хлеб на закваске"), "Выпечка"),
    **dict.fromkeys(("Женская стрижка", "Мужская стрижка"), "Стрижки"),
    **dict.fromkeys(("Бешбармак", "Лагман", "Манты, 5 штук", "Плов"), "Горячие блюда"),
    **dict.fromkeys(("Одиннадцать тюльпанов", "Двадцать пять роз", "Пионы в коробке"), "Цветы"),
    **dict.fromkeys(("Казы, ассорти", "Казы, 500 г"), "Казы"),
}

MERCHANTS: tuple[DemoMerchant, ...] = (
    DemoMerchant(
        "Салон красоты «Ару»", "beauty", "salon-aru.example.com", 12, "Аружан Сейткали", "Мадина Омарова",
        "Стрижки, окрашивание, маникюр и брови: команда из шести мастеров работает на улице Абая "
        "девятый год. Запишитесь по телефону или просто заходите — чай за наш счёт.",
        "Пн–Сб 9:00–20:00\nВс 10:00–18:00",
        (("Женская стрижка", 6000), ("Мужская стрижка", 3500), ("Окрашивание", 15000),
         ("Маникюр с гель-лаком", 7000), ("Коррекция бровей", 3000)),
        700, 30, 0.9, ("#f7b2cf", "#7b3f9e"),
    ),
    DemoMerchant(
        "Дастархан", "restaurant", "dastarkhan-abay.example.com", 15, "Ерлан Ахметов", "Асель Жунусова",
        "Казахская и среднеазиатская домашняя кухня: бешбармак по пятницам, лагман ручной тяжки и "
        "баурсаки прямо со сковороды. Шестьдесят мест и тихий зал для семейных праздников.",
        "Ежедневно 11:00–23:00",
        (("Бешбармак", 4500), ("Лагман", 2800), ("Манты, 5 штук", 2500), ("Плов", 2900),
         ("Казы, ассорти", 5500), ("Чай на двоих", 900)),
        500, 50, 1.3, ("#f4c27a", "#a23b1c"),
    ),
    DemoMerchant(
        "Автомойка «Жулдыз»", "car_wash", "zhuldyz-wash.example.com", 27, "Бауыржан Оспанов", "Дмитрий Козлов",
        "Ручная мойка и детейлинг на шести постах, круглосуточно. Подождите в зале с бесплатным "
        "кофе: полная мойка занимает около сорока минут.",
        "Круглосуточно, 24/7",
        (("Экспресс-мойка", 3000), ("Комплексная мойка", 6000), ("Мойка двигателя", 5000),
         ("Химчистка салона", 25000), ("Полировка кузова", 18000)),
        1000, 20, 0.8, ("#8fd3f4", "#1d4e89"),
    ),
    DemoMerchant(
        "Пекарня «Баурсак»", "bakery", "baursak-bakery.example.com", 8, "Гульнара Искакова", "Ольга Смирнова",
        "Хлеб из каменной печи дважды в день: тандырные лепёшки, ржаной на закваске, самса и "
        "медовик. Утренняя выпечка готова к половине восьмого.",
        "Ежедневно 7:00–21:00",
        (("Тандырная лепёшка", 350), ("Ржаной хлеб на закваске", 900), ("Самса с говядиной", 600),
         ("Медовик, кусок", 1200), ("Булочка с корицей", 700), ("Пакет баурсаков", 800),
         ("Кофе американо", 600)),
        300, 100, 1.6, ("#fbe3b0", "#b9770e"),
    ),
    DemoMerchant(
        "Кинотеатр «Арман»", "cinema", "arman-cinema.example.com", 41, "Арман Касымов", "Даниияр Абенов",
        "Кинотеатр по соседству: два зала, новинки на казахском и русском и детский утренний сеанс "
        "каждые выходные. Попкорн готовим сами.",
        "Ежедневно 10:00–01:00",
        (("Билет на утренний сеанс", 1800), ("Билет на вечерний сеанс", 2800), ("Место VIP", 4500),
         ("Большой попкорн", 1500), ("Комбо на двоих", 5000)),
        500, 50, 0.9, ("#5c5c8a", "#161629"),
    ),
    DemoMerchant(
        "Кофейня «Шанырак»", "cafe", "shanyrak-coffee.example.com", 19, "Алихан Сулейменов", "Анна Павлова",
        "Спешелти-кофе алматинской обжарки, завтраки весь день и длинный стол для работы с "
        "ноутбуком. Приходите со своей кружкой — скидка 100 ₸.",
        "Пн–Пт 7:30–22:00\nСб–Вс 9:00–22:00",
        (("Капучино", 1300), ("Флэт уайт", 1500), ("Раф с халвой", 1700),
         ("Завтрак с сырниками", 2600), ("Круассан", 900)),
        800, 50, 1.5, ("#d7b59a", "#4e2a1e"),
    ),
    DemoMerchant(
        "Цветы «Гульдер»", "flowers", "gulder-flowers.example.com", 23, "Сауле Тулегенова", "Камила Каримова",
        "Тюльпаны, розы и пионы из местных теплиц, букеты при вас и доставка по улице Абая "
        "в течение часа.",
        "Ежедневно 8:00–22:00",
        (("Одиннадцать тюльпанов", 8000), ("Двадцать пять роз", 22000), ("Пионы в коробке", 18000),
         ("Орхидея в горшке", 9500), ("Открытка", 500)),
        600, 40, 0.6, ("#ffd1dc", "#2e8b57"),
    ),
    DemoMerchant(
        "Фитнес-клуб «Алтын»", "fitness", "altyn-fitness.example.com", 33, "Тимур Баймуханов", "Виктория Орлова",
        "Свободные веса и кардиозона, групповые занятия (йога, функциональный тренинг, бокс) и "
        "сауна. Тренеры говорят на казахском, русском и английском.",
        "Пн–Пт 6:00–23:00\nСб–Вс 8:00–22:00",
        (("Разовое посещение", 3000), ("Абонемент на месяц", 18000), ("Персональная тренировка", 8000),
         ("Занятие йогой", 2500), ("Сауна, один час", 4000)),
        400, 25, 0.7, ("#ffe08a", "#c0392b"),
    ),
    DemoMerchant(
        "Аптека «Денсаулык»", "pharmacy", "densaulyk-pharmacy.example.com", 4, "Динара Утепова",
        "Сергей Лебедев",
        "Фармацевт весь день на месте, рецептурные лекарства при вас, детское питание, витамины "
        "и уход за кожей.",
        "Ежедневно 8:00–23:00",
        (("Витамин D3", 2500), ("Набор от простуды", 4200), ("Детская смесь", 6500),
         ("Солнцезащитный крем SPF 50", 5800)),
        200, 10, 0.8, ("#c8f7dc", "#11806a"),
    ),
    DemoMerchant(
        "Маркет «Береке»", "grocery", "bereke-market.example.com", 37, "Канат Есенов", "Наталья Морозова",
        "Свежие овощи и фрукты с алматинских ферм, казы из мясного отдела, молочное из Талгара и "
        "всё остальное для кухни.",
        "Ежедневно 7:00–24:00",
        (("Казы, 500 г", 6500), ("Курт, упаковка", 1200), ("Яблоки апорт, 1 кг", 900),
         ("Талгарское молоко, 1 л", 650), ("Жетысуский мёд", 3500)),
        300, 50, 1.4, ("#d4efb0", "#3d7a1f"),
    ),
)

# Realistic names for the street's customers: Kazakh and Russian, in Cyrillic as people write them.
_WOMEN = (
    "Айгерим", "Аружан", "Дана", "Динара", "Жанна", "Мадина", "Сауле", "Гульнара", "Айнур",
    "Камила", "Асель", "Алия", "Ақбота", "Томирис", "Молдир", "Зарина", "Балнур", "Индира",
    "Анна", "Елена", "Ольга", "Наталья", "Татьяна", "Ирина", "Светлана", "Мария", "Юлия",
    "Екатерина", "Анастасия", "Дарья",
)
_MEN = (
    "Нурлан", "Ерлан", "Данияр", "Айдос", "Арман", "Бауыржан", "Аскар", "Тимур", "Әлихан",
    "Ержан", "Даурен", "Санжар", "Азамат", "Руслан", "Марат", "Канат", "Серик", "Нұрлыбек",
    "Алексей", "Дмитрий", "Сергей", "Андрей", "Иван", "Михаил", "Николай", "Павел", "Владимир",
    "Игорь", "Максим", "Артём",
)
_SURNAMES = (  # masculine forms; the feminine adds "а"
    "Ахметов", "Жунусов", "Сарсенбаев", "Оспанов", "Кайратов", "Абенов", "Искаков", "Мухамедов",
    "Баймуханов", "Тулегенов", "Каримов", "Есенов", "Джаксыбеков", "Утепов", "Сулейменов",
    "Аманов", "Нурланов", "Касымов", "Омаров", "Иванов", "Петров", "Смирнов", "Кузнецов", "Попов",
    "Соколов", "Лебедев", "Козлов", "Новиков", "Морозов", "Волков", "Павлов", "Федоров", "Орлов",
)
# Reserved example domains: demo e-mail can never reach a real mailbox, even with SMTP configured.
_MAIL_DOMAINS = ("example.com", "example.org", "example.net")
_MOBILE_PREFIXES = ("700", "701", "702", "705", "707", "708", "747", "771", "775", "776", "777", "778")


@dataclass(frozen=True)
class CustomerSpec:
    index: int
    email: str
    name: str
    phone: str
    arrived_days_ago: float


def customer_specs(count: int) -> list[CustomerSpec]:
    """The same customers every time: customer ``i`` depends only on ``i`` (and earlier phones)."""
    specs: list[CustomerSpec] = []
    phones: set[str] = set()
    for index in range(1, count + 1):
        rng = random.Random(f"{SEED}-customer-{index}")
        woman = rng.random() < 0.55
        first = rng.choice(_WOMEN if woman else _MEN)
        surname = rng.choice(_SURNAMES)
        if woman:
            surname += "а"
        handle = f"{merchant_service.slugify(first)}.{merchant_service.slugify(surname)}"
        email = f"{handle}{index}@{rng.choice(_MAIL_DOMAINS)}".replace("-", "")
        phone = ""
        while not phone or phone in phones:
            phone = f"+7{rng.choice(_MOBILE_PREFIXES)}{rng.randrange(10**7):07d}"
        phones.add(phone)
        specs.append(CustomerSpec(index, email, f"{first} {surname}", phone, 2 + rng.random() * (HISTORY_DAYS - 2)))
    return specs


class _Loader:
    """One run of the loader: every step looks for what exists and adds only what is missing."""

    def __init__(self, echo: Echo, now: datetime | None = None) -> None:
        self.session = db.session
        self.echo = echo
        self.now = now or utcnow()
        self.created: Counter[str] = Counter()
        self._password_hash: str | None = None
        self._card_codes: set[str] = set()

    # ------------------------------------------------------------------ helpers

    @property
    def password_hash(self) -> str:
        # argon2id costs ~100 ms per hash: hash the shared demo password once per run.
        if self._password_hash is None:
            self._password_hash = accounts.hash_password(DEMO_PASSWORD)
        return self._password_hash

    def card_code(self) -> str:
        code = codes.generate(10)
        while code in self._card_codes:  # 50 random bits: a clash is a curiosity, still handled
            code = codes.generate(10)
        self._card_codes.add(code)
        return code

    def user(self, email: str, name: str, created_at: datetime, phone: str | None = None) -> User:
        email = accounts.normalize_email(email)
        user = self.session.scalar(select(User).where(User.email == email))
        if user is None:
            user = User(
                email=email, password_hash=self.password_hash, name=name,
                phone=accounts.normalize_phone(phone), card_code=self.card_code(),
                locale="ru", created_at=created_at,
            )
            self.session.add(user)
            self.session.flush()
            self.created["users"] += 1
        return user

    # ------------------------------------------------------------------ steps

    def network(self) -> Network:
        started = self.now - timedelta(days=HISTORY_DAYS + 30)
        operator = self.user(OPERATOR_EMAIL, "Жанар Абаева", started)
        network = self.session.scalar(select(Network).where(Network.slug == NETWORK_SLUG))
        if network is None:
            network = merchant_service.create_network(
                self.session, NETWORK_NAME, "KZT", operator, default_locale="ru", slug=NETWORK_SLUG,
                point_value_minor=100,  # one point is one tenge
                timezone=ALMATY.key,
                description="Соседи с улицы Абая в Алматы: одна карта для салона, пекарни, "
                "кинотеатра и всей улицы.",
            )
            network.created_at = started
            self.created["networks"] += 1
        network.timezone = ALMATY.key  # streets loaded before networks had a zone catch up
        self.session.commit()
        return network

    def merchants(self, network: Network) -> list[StaffInfo]:
        """Every demo merchant with its owner and cashier, active since before the history starts."""
        result = []
        with unit_of_work(self.session):
            opened = self.now - timedelta(days=HISTORY_DAYS + 14)
            for spec in MERCHANTS:
                owner = self.user(f"owner@{spec.domain}", spec.owner, opened)
                cashier = self.user(f"cashier@{spec.domain}", spec.cashier, opened)
                slug = merchant_service.slugify(spec.name)
                merchant = self.session.scalar(select(Merchant).where(Merchant.slug == slug))
                if merchant is None:
                    merchant = merchant_service.apply_to_network(
                        self.session, owner, network, name=spec.name, category=spec.category,
                        description=spec.description, address=f"ул. Абая, {spec.house}, Алматы",
                        opening_hours=spec.hours, phone=f"+7 727 {300 + spec.house} {10 + spec.house:02d} 15",
                        cashback_bp=spec.cashback_bp, max_points_share_pct=spec.max_points_share_pct,
                    )
                    price_items.add_items(
                        self.session, merchant,
                        [price_items.ItemRow(None, item, tenge * 100, ITEM_CATEGORIES.get(item, ""))
                         for item, tenge in spec.prices],
                        price_items.language_of(network),
                    )
                    merchant.status = "active"
                    merchant.created_at = opened
                    merchant.approved_at = opened + timedelta(days=1)
                    self.created["merchants"] += 1
                for person, role in ((owner, "owner"), (cashier, "cashier")):
                    if merchant_service.staff_role(self.session, person.id, merchant.id) is None:
                        self.session.add(StaffRole(user_id=person.id, merchant_id=merchant.id, role=role))
                        self.created["staff roles"] += 1
                self.session.flush()
                if not merchant.photos:
                    self.store_photo(merchant, spec)
                    self.created["photos"] += 1
                result.append(
                    StaffInfo(merchant.id, merchant.name, owner.id, owner.email, cashier.id, cashier.email)
                )
        return result

    def store_photo(self, merchant: Merchant, spec: DemoMerchant) -> None:
        """Stored like an owner's upload: re-encoded, random name, a ``MerchantPhoto`` row."""
        buffer = io.BytesIO()
        merchant_picture(spec).save(buffer, "JPEG", quality=90)
        config = current_app.config
        # The service's messages are translated; outside a request there is no locale to pick.
        with force_locale(merchant.network.default_locale):
            photos.add_photo(
                self.session, merchant, buffer.getvalue(), config["UPLOAD_FOLDER"],
                photos.Limits(max_bytes=config["MAX_PHOTO_BYTES"], max_pixels=config["MAX_PHOTO_PIXELS"]),
                alt_text=f"{spec.name}, {str(merchant_service.CATEGORIES[spec.category]).lower()}, ул. Абая",
            )

    def customers(self, count: int) -> list[tuple[CustomerSpec, int]]:
        """The street's customers (ids), created with the shared demo password hash."""
        specs = customer_specs(count)
        existing: dict[str, User] = {}
        taken_phones: set[str] = set()
        for chunk in _chunks([spec.email for spec in specs], 500):
            existing.update(
                (user.email, user) for user in self.session.scalars(select(User).where(User.email.in_(chunk)))
            )
        for chunk in _chunks([spec.phone for spec in specs], 500):
            taken_phones.update(self.session.scalars(select(User.phone).where(User.phone.in_(chunk))))
        result = []
        for spec in specs:
            user = existing.get(spec.email)
            if user is None:
                user = User(
                    email=accounts.normalize_email(spec.email), password_hash=self.password_hash,
                    name=spec.name,
                    # A real person may already have registered this number; then the demo one has none.
                    phone=None if spec.phone in taken_phones else accounts.normalize_phone(spec.phone),
                    card_code=self.card_code(), locale="ru",
                    created_at=self.now - timedelta(days=spec.arrived_days_ago),
                )
                self.session.add(user)
                self.created["customers"] += 1
            result.append((spec, user))
        self.session.flush()
        ids = [(spec, user.id) for spec, user in result]
        self.session.commit()
        return ids

    def memberships(self, customers: list[tuple[CustomerSpec, int]], merchant_ids: list[int]) -> None:
        """Cards at one to five merchants per customer, joined with consent on backdated days.

        The same rows ``memberships.join_merchant`` writes (membership, consent, the week's
        new-customer count, the ``membership_recorded`` hook), with the join time in the past.
        """
        merchants = self.session.scalars(
            select(Merchant).where(Merchant.id.in_(merchant_ids)).order_by(Merchant.id)
        ).all()
        by_id = {merchant.id: merchant for merchant in merchants}
        popularity = [_spec_for(merchant).popularity for merchant in merchants]
        existing = set(
            self.session.execute(
                select(Membership.user_id, Membership.merchant_id).where(
                    Membership.merchant_id.in_(list(by_id))
                )
            ).all()
        )
        version = current_app.config["CONSENT_TEXT_VERSION"]
        new: list[Membership] = []
        weekly: dict[tuple[int, date], int] = defaultdict(int)
        for spec, user_id in customers:
            rng = random.Random(f"{SEED}-cards-{spec.index}")
            wanted = rng.choices((1, 2, 3, 4, 5), weights=(30, 30, 20, 12, 8))[0]
            chosen: list[Merchant] = []
            while len(chosen) < wanted:
                merchant = rng.choices(merchants, weights=popularity)[0]
                if merchant not in chosen:
                    chosen.append(merchant)
            arrived = self.now - timedelta(days=spec.arrived_days_ago)
            for position, merchant in enumerate(chosen):
                # The first card is taken on arrival; neighbours' cards follow in later weeks.
                offset = 0.0 if position == 0 else rng.random() * spec.arrived_days_ago * 0.8
                joined = arrived + timedelta(days=offset, minutes=rng.randrange(5, 50))
                if (user_id, merchant.id) in existing:
                    continue
                membership = Membership(
                    user_id=user_id, merchant_id=merchant.id, joined_at=joined,
                    join_source=rng.choice(("qr", "qr", "link", "code")),
                )
                new.append(membership)
                self.session.add(membership)
                self.session.add(
                    ConsentRecord(
                        user_id=user_id, merchant_id=merchant.id,
                        purpose=membership_service.DATA_PROCESSING, granted=True,
                        text_version=version, text=membership_service.consent_text(merchant),
                        created_at=joined,
                    )
                )
                if rng.random() < 0.4:
                    self.session.add(
                        ConsentRecord(
                            user_id=user_id, merchant_id=merchant.id,
                            purpose=membership_service.MARKETING, granted=True,
                            text_version=version,
                            text=membership_service.consent_text(merchant, membership_service.MARKETING),
                            created_at=joined,
                        )
                    )
                weekly[(merchant.id, week_start(joined))] += 1
        if not new:
            return
        self.session.flush()
        # One upsert per merchant-week instead of one per card; the sums are the same.
        for (merchant_id, monday), count in sorted(weekly.items()):
            moment = datetime.combine(monday, datetime.min.time(), UTC)
            bump_weekly_stats(self.session, merchant_id, moment, new_customers=count)
        for membership in new:
            merchant = by_id[membership.merchant_id]
            hooks_for(merchant).neighbourly_membership_recorded(
                merchant=merchant, membership=membership, session=self.session, referral_code=None,
                rejoined=False,
            )
        self.session.commit()
        self.created["memberships"] += len(new)

    def purchases(self, count: int, staff: list[StaffInfo]) -> None:
        """Six months of sales, oldest first, each recorded by the purchase service as a till would."""
        by_merchant = {info.merchant_id: info for info in staff}
        merchant_ids = list(by_merchant)
        session = self.session()  # the scoped session's Session: it owns expire_on_commit
        session.commit()
        # Nothing else is needed from the identity map; a small map keeps each commit cheap.
        session.expunge_all()
        cards = session.execute(
            select(Membership.id, Membership.merchant_id, Membership.joined_at, Membership.balance)
            .where(Membership.merchant_id.in_(merchant_ids))
            .order_by(Membership.id)
        ).all()
        if not cards:
            return
        merchants = {
            merchant.id: merchant
            for merchant in session.scalars(select(Merchant).where(Merchant.id.in_(merchant_ids)))
        }
        done = set(
            session.scalars(
                select(Purchase.idempotency_key).where(
                    Purchase.merchant_id.in_(merchant_ids),
                    Purchase.idempotency_key.like(f"{KEY_PREFIX}%"),
                )
            )
        )
        todo = [item for item in self.purchase_plan(count, cards, merchants) if item.key not in done]
        if not todo:
            return
        for merchant in merchants.values():
            _ = merchant.network.point_value_minor  # loaded once; neither changes while loading
        balances = {card.id: card.balance for card in cards}
        started = time.perf_counter()
        self.echo(f"Recording {len(todo):,} purchases through the purchase service…")
        self.record_through_service(session, todo, merchants, by_merchant, balances)
        self.echo(f"  … done in {time.perf_counter() - started:.1f} s")

    def draft(
        self, item: _PlannedPurchase, merchant: Merchant, staff: dict[int, StaffInfo], balance: int
    ) -> PurchaseDraft:
        """The till's submission for a planned sale; points follow the card's running balance."""
        limit = points_limit(item.amount, merchant.max_points_share_pct, merchant.network.point_value_minor)
        points = 0
        if item.use_points and balance >= 100 and limit >= 100:
            points = min(balance, limit)
            if item.use_points == "half":
                points //= 2
            points -= points % 100  # people spend whole tenge of points
        info = staff[item.merchant_id]
        return PurchaseDraft(
            membership_id=item.membership_id, amount=item.amount, points_to_use=points,
            idempotency_key=item.key, created_at=item.moment,
            cashier_id=info.cashier_id if item.by_cashier else info.owner_id,
        )

    def record_through_service(
        self, session, todo: list[_PlannedPurchase], merchants: dict[int, Merchant],
        staff: dict[int, StaffInfo], balances: dict[int, int],
    ) -> None:
        # Merchants and the network stay loaded across commits (they do not change here);
        # each card is read fresh before its sale, so validation sees the real balance.
        session.expire_on_commit = False
        try:
            for item in todo:
                merchant = merchants[item.merchant_id]
                draft = self.draft(item, merchant, staff, balances[item.membership_id])
                card = session.get(Membership, item.membership_id, populate_existing=True)
                try:
                    outcome = record_purchase(session, merchant, card, draft)
                except NeighbourlyError as error:  # e.g. a plugin declined: report, keep going
                    self.echo(f"  {item.key} declined: {error.message}")
                    continue
                purchase = outcome.purchase
                balances[item.membership_id] += purchase.points_earned - purchase.points_used
                session.expunge(purchase)
                self.created["purchases"] += 1
        finally:
            session.expire_on_commit = True
            session.expunge_all()

    def purchase_plan(self, count: int, cards: list, merchants: dict[int, Merchant]) -> list[_PlannedPurchase]:
        """What is sold, to whom and when: the same plan for the same cards on every run."""
        rng = random.Random(f"{SEED}-purchases")
        horizon = timedelta(days=HISTORY_DAYS)
        weights = []
        for card in cards:
            loyalty = min(rng.paretovariate(1.6), 12.0)  # a few regulars, many occasional guests
            share = max((self.now - card.joined_at) / horizon, 0.02)
            weights.append(_spec_for(merchants[card.merchant_id]).popularity * loyalty * share)
        plan = []
        for number, card in enumerate(rng.choices(cards, weights=weights, k=count), start=1):
            spec = _spec_for(merchants[card.merchant_id])
            items = rng.choices((1, 2, 3), weights=(60, 30, 10))[0]
            amount = sum(
                rng.choice(spec.prices)[1] * rng.choices((1, 2), weights=(80, 20))[0] for _ in range(items)
            ) * 100
            plan.append(
                _PlannedPurchase(
                    key=f"{KEY_PREFIX}{number}",
                    membership_id=card.id,
                    merchant_id=card.merchant_id,
                    amount=amount,
                    moment=self.sale_time(rng, card.joined_at),
                    use_points=rng.choices(("", "all", "half"), weights=(75, 15, 10))[0],
                    by_cashier=rng.random() < 0.85,
                )
            )
        plan.sort(key=lambda item: (item.moment, item.key))
        return plan

    def sale_time(self, rng: random.Random, joined: datetime) -> datetime:
        """A moment between joining and now, during the day in Almaty."""
        span = (self.now - joined).total_seconds()
        moment = joined + timedelta(seconds=rng.random() * span)
        local = moment.astimezone(ALMATY)
        local = local.replace(hour=rng.randrange(9, 21), minute=rng.randrange(60), second=rng.randrange(60))
        moment = local.astimezone(joined.tzinfo)
        if moment <= joined:
            moment = joined + timedelta(minutes=rng.randrange(2, 30))
        return min(moment, self.now - timedelta(minutes=1))

    def plugins(self, staff: list[StaffInfo]) -> list[str]:
        """Switch every installed plugin on for the first few merchants, dependencies first."""
        registry = current_app.extensions["neighbourly"]
        ordered = registry.in_dependency_order()
        for info in staff[:PLUGIN_MERCHANTS]:
            merchant = self.session.get(Merchant, info.merchant_id)
            owner = self.session.get(User, info.owner_id)
            for name in ordered:
                before = is_enabled(merchant, name)
                try:
                    # Defaults a plugin creates (level names, letter texts) in the owner's language.
                    with force_locale(owner.locale or merchant.network.default_locale):
                        merchant_service.set_plugin_enabled(
                            self.session, registry, merchant, name, True, actor=owner
                        )
                except NeighbourlyError as error:
                    self.echo(f"  {name} not enabled for {merchant.name}: {error.message}")
                    continue
                if not before:
                    self.created["plugins enabled"] += 1
        chosen = staff[:PLUGIN_MERCHANTS]
        merchants = [self.session.get(Merchant, info.merchant_id) for info in chosen]
        owners = [self.session.get(User, info.owner_id) for info in chosen]
        for name in ordered:
            hooks = only_plugin(name)
            for merchant, owner in zip(merchants, owners, strict=True):
                neighbours = [m for m in merchants if m.id != merchant.id and is_enabled(m, name)]
                if not is_enabled(merchant, name):
                    continue
                with force_locale(owner.locale or merchant.network.default_locale):
                    hooks.neighbourly_demo_content(merchant=merchant, neighbours=neighbours, session=self.session)
                self.session.commit()
        return ordered


@dataclass(frozen=True)
class StaffInfo:
    """A demo merchant and its two logins, as plain values that outlive any session."""

    merchant_id: int
    merchant_name: str
    owner_id: int
    owner_email: str
    cashier_id: int
    cashier_email: str


@dataclass(frozen=True)
class _PlannedPurchase:
    key: str
    membership_id: int
    merchant_id: int
    amount: int
    moment: datetime
    use_points: str  # "", "all" or "half" of what may be used
    by_cashier: bool


def load(
    customers: int = 220, purchases: int = 3200, echo: Echo = print, *, now: datetime | None = None
) -> dict[str, int]:
    """Load (or complete) the demo neighbourhood; a second run adds nothing and says so.

    Every sale goes through ``record_purchase``; ``now`` pins the clock (the same plan twice).
    Returns what was created, by kind (empty when everything was already there).
    """
    started = time.perf_counter()
    # The loader runs its own transactions; an open one (SQLite: holding the write lock) would
    # block the schema check on its separate connection.
    db.session.commit()
    ensure_schema()
    loader = _Loader(echo, now)
    network = loader.network()
    staff = loader.merchants(network)
    people = loader.customers(customers)
    loader.memberships(people, [info.merchant_id for info in staff])
    loader.purchases(purchases, staff)
    plugins = loader.plugins(staff)
    elapsed = time.perf_counter() - started
    if loader.created:
        summary = ", ".join(f"{count:,} {what}" for what, count in sorted(loader.created.items()))
        echo(f"Demo neighbourhood loaded in {elapsed:.1f} s: {summary}.")
    else:
        echo("The demo neighbourhood is already loaded; nothing changed.")
    _print_logins(echo, staff, [spec for spec, _user_id in people[:3]], plugins)
    return dict(loader.created)


def _print_logins(
    echo: Echo, staff: list[StaffInfo], customers: list[CustomerSpec], plugins: list[str]
) -> None:
    echo("")
    echo(f"Demo logins (every password: {DEMO_PASSWORD})")
    echo(f"  {'Network operator':<22} {OPERATOR_EMAIL}")
    for info in staff:
        echo(f"  {info.merchant_name:<22} owner {info.owner_email:<34} cashier {info.cashier_email}")
    for spec in customers:
        echo(f"  {'Customer':<22} {spec.email:<40} ({spec.name})")
    if plugins:
        names = ", ".join(info.merchant_name for info in staff[:PLUGIN_MERCHANTS])
        echo(f"  Plugins switched on for {names}: {', '.join(plugins)}")
    echo("")


# --------------------------------------------------------------------------- pictures


def merchant_picture(spec: DemoMerchant, size: tuple[int, int] = (960, 640)) -> Image.Image:
    """A friendly cover picture: a diagonal gradient, soft circles, the initials and the name."""
    width, height = size
    top, bottom = ImageColor.getrgb(spec.colours[0]), ImageColor.getrgb(spec.colours[1])
    vertical = Image.linear_gradient("L")
    diagonal = Image.blend(vertical, vertical.rotate(90), 0.5).resize(size)
    picture = Image.composite(Image.new("RGB", size, top), Image.new("RGB", size, bottom), diagonal)
    draw = ImageDraw.Draw(picture, "RGBA")
    rng = random.Random(spec.domain)
    for _ in range(9):
        radius = rng.randrange(60, 260)
        x, y = rng.randrange(-100, width + 100), rng.randrange(-100, height + 100)
        draw.ellipse(
            (x - radius, y - radius, x + radius, y + radius), fill=(255, 255, 255, rng.randrange(18, 48))
        )
    initials = "".join(word[0] for word in spec.name.split()[:2]).upper()
    centre_x = width // 2
    draw.ellipse((centre_x - 150, 70, centre_x + 150, 370), fill=(*bottom, 150))
    draw.text((centre_x, 220), initials, font=_font(140), anchor="mm", fill=(255, 255, 255, 255))
    # A dark band keeps the white name readable on the lightest gradients.
    draw.rectangle((0, 440, width, height), fill=(0, 0, 0, 110))
    draw.text((centre_x, 510), spec.name, font=_font(58), anchor="mm", fill=(255, 255, 255, 255))
    draw.text(
        (centre_x, 580), f"ул. Абая, {spec.house}", font=_font(30, bold=False), anchor="mm",
        fill=(255, 255, 255, 230),
    )
    return picture


def _font(size: int, bold: bool = True) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in FONT_DIRS:
        path = Path(folder) / name
        if path.exists():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def _spec_for(merchant: Merchant) -> DemoMerchant:
    return _SPECS_BY_SLUG[merchant.slug]


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


_SPECS_BY_SLUG = {merchant_service.slugify(spec.name): spec for spec in MERCHANTS}
