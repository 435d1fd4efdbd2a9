#!/usr/bin/env python3
"""Write samples/users.ndjson: about 500 realistic Auth0 users for tests and demos.

Each line is one user exactly as Auth0's `GET /api/v2/users` returns it: compact JSON,
keys in Auth0's order (created_at, email, email_verified, family_name, given_name,
identities, name, nickname, picture, updated_at, user_id, user_metadata, app_metadata,
last_ip, last_login, logins_count), keys a user lacks left out.

The users live in four kinds of connection: the database connections
`Username-Password-Authentication` and `legacy-db`, the social connection
`google-oauth2`, and the SAML connections `acme-saml` and `globex-saml`. Their metadata
is built to trip up serializers and CSV writers: deep nesting, arrays of objects and of
scalars, unicode (accents, CJK, emoji, Arabic and Hebrew), integers beyond 2^53 and
below zero, floats written the way JavaScript writes them, nulls, empty objects and
arrays, keys with spaces, dashes, commas and quotes, long strings, strings that look like
spreadsheet formulas, and strings with commas, quotes, newlines and tabs. Some users have
only user_metadata, some only app_metadata, some neither. Two bulk imports give groups of
users created in the same second, one of them in the same millisecond.

Metadata keys never contain `.` or `$`, and app_metadata never uses Auth0's reserved names.

Run from anywhere, with any Python 3.9 or newer and nothing but the standard library:

    python3 samples/make_samples.py

The output is byte-identical on every run (fixed seed, no clock, no hash-order
dependence). Before writing, the script checks its own output: every line parses, key
order, user_ids unique, emails unique within a connection, timestamps well-formed and
ordered, metadata keys allowed. A failed check raises and nothing is written.
"""

import datetime
import decimal
import hashlib
import json
import os
import random
import re

SEED = 20250417
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "users.ndjson")

# How many users of each connection; 500 in all.
COUNTS = {
    "Username-Password-Authentication": 300,
    "legacy-db": 110,
    "google-oauth2": 72,
    "acme-saml": 12,
    "globex-saml": 6,
}

KEY_ORDER = [
    "created_at", "email", "email_verified", "family_name", "given_name", "identities",
    "name", "nickname", "picture", "updated_at", "user_id", "user_metadata",
    "app_metadata", "last_ip", "last_login", "logins_count",
]

RESERVED_APP_METADATA = {
    "__tenant", "_id", "blocked", "clientID", "created_at", "email_verified", "email",
    "globalClientID", "global_client_id", "identities", "lastIP", "lastLogin", "loginsCount",
    "metadata", "multifactor_last_modified", "multifactor", "updated_at", "user_id",
}

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def ms_of(year, month, day, hour=0, minute=0, second=0, milli=0):
    dt = datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.timezone.utc)
    return (dt - EPOCH) // datetime.timedelta(milliseconds=1) + milli


CREATED_FROM = ms_of(2019, 1, 1)
CREATED_TO = ms_of(2025, 12, 31, 23, 59, 59, 999)
UPDATED_TO = ms_of(2026, 6, 30, 23, 59, 59, 999)
DAY = 86_400_000

# Two bulk imports. The legacy-db migration put 40 users into one exact millisecond;
# a partner import put 25 users into one second, spread over its milliseconds.
LEGACY_IMPORT_MS = ms_of(2021, 3, 14, 9, 26, 53, 589)
LEGACY_IMPORT_SIZE = 40
PARTNER_IMPORT_SECOND = ms_of(2023, 11, 2, 16, 5, 41)
PARTNER_IMPORT_SIZE = 25


def iso(ms):
    dt = EPOCH + datetime.timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


# --- JSON the way Auth0 (Node.js) writes it -------------------------------------------


def js_number(x):
    """Format a float like JavaScript's Number.prototype.toString (so 1e-7, not 1e-07)."""
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError("JSON has no NaN or infinity")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    tup = decimal.Decimal(repr(abs(x))).as_tuple()
    digits = "".join(map(str, tup.digits)).rstrip("0")
    exp = tup.exponent + (len(tup.digits) - len(digits))
    k = len(digits)
    n = exp + k  # value = 0.digits * 10^n
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        body = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return sign + body


def dump(value):
    """Compact JSON, raw UTF-8, dict order kept, floats as JavaScript prints them."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return js_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(dump(k) + ":" + dump(v) for k, v in value.items()) + "}"
    raise TypeError(type(value))


# --- People ----------------------------------------------------------------------------

# locale -> (given names, family names, name order, cities); each name is (display, ascii).
# Name order: "gf" = "Given Family", "fg" = "Family Given", "fg-" = "FamilyGiven" (no space).
PEOPLE = {
    "en-US": (
        [("Emily", "emily"), ("James", "james"), ("Olivia", "olivia"), ("Liam", "liam"),
         ("Mary-Jane", "maryjane"), ("Noah", "noah"), ("Ava", "ava"), ("Ethan", "ethan")],
        [("Johnson", "johnson"), ("O'Brien", "obrien"), ("Smith", "smith"), ("Walker", "walker"),
         ("García", "garcia"), ("Nguyen", "nguyen"), ("Washington", "washington")],
        "gf", ["Seattle", "Austin", "Boston", "New York", "Chicago"]),
    "en-GB": (
        [("Oliver", "oliver"), ("Amelia", "amelia"), ("Harry", "harry"), ("Isla", "isla")],
        [("Taylor", "taylor"), ("Davies", "davies"), ("Evans", "evans"), ("Ffrench-Mullen", "ffrenchmullen")],
        "gf", ["London", "Manchester", "Edinburgh", "Cardiff"]),
    "en-IE": (
        [("Siobhán", "siobhan"), ("Seán", "sean"), ("Aoife", "aoife"), ("Pádraig", "padraig")],
        [("Ní Bhriain", "nibhriain"), ("Ó Súilleabháin", "osullivan"), ("Murphy", "murphy")],
        "gf", ["Dublin", "Cork", "Galway"]),
    "fr-FR": (
        [("Élodie", "elodie"), ("François", "francois"), ("Zoé", "zoe"), ("Léa", "lea"),
         ("Jérôme", "jerome"), ("Amélie", "amelie"), ("Mathis", "mathis"), ("Anaïs", "anais")],
        [("Lefèvre", "lefevre"), ("Dubois", "dubois"), ("Moreau", "moreau"), ("Girard", "girard"),
         ("Bérenger", "berenger"), ("Château", "chateau")],
        "gf", ["Paris", "Paris", "Paris", "Lyon", "Marseille", "Toulouse", "Lille"]),
    "de-DE": (
        [("Jürgen", "juergen"), ("Björn", "bjoern"), ("Lena", "lena"), ("Maximilian", "maximilian"),
         ("Sophie", "sophie"), ("Jörg", "joerg")],
        [("Müller", "mueller"), ("Schröder", "schroeder"), ("Weiß", "weiss"), ("Krüger", "krueger"),
         ("Hoffmann", "hoffmann")],
        "gf", ["Berlin", "München", "Köln", "Hamburg", "Düsseldorf"]),
    "es-ES": (
        [("José", "jose"), ("María", "maria"), ("Iñaki", "inaki"), ("Lucía", "lucia")],
        [("Núñez", "nunez"), ("Muñoz", "munoz"), ("Fernández", "fernandez"), ("Peña", "pena")],
        "gf", ["Madrid", "Barcelona", "A Coruña", "Sevilla"]),
    "pt-BR": (
        [("João", "joao"), ("Conceição", "conceicao"), ("Thiago", "thiago"), ("Letícia", "leticia")],
        [("Gonçalves", "goncalves"), ("Araújo", "araujo"), ("Assunção", "assuncao"), ("Silva", "silva")],
        "gf", ["São Paulo", "Rio de Janeiro", "Belo Horizonte", "Florianópolis"]),
    "pl-PL": (
        [("Łukasz", "lukasz"), ("Zofia", "zofia"), ("Małgorzata", "malgorzata"), ("Wojciech", "wojciech")],
        [("Wójcik", "wojcik"), ("Kowalska", "kowalska"), ("Żółkiewski", "zolkiewski"), ("Nowak", "nowak")],
        "gf", ["Kraków", "Warszawa", "Łódź", "Gdańsk"]),
    "tr-TR": (
        [("İsmail", "ismail"), ("Şule", "sule"), ("Gökhan", "gokhan"), ("Ayşe", "ayse")],
        [("Yılmaz", "yilmaz"), ("Çelik", "celik"), ("Öztürk", "ozturk"), ("Şahin", "sahin")],
        "gf", ["İstanbul", "Ankara", "İzmir"]),
    "sv-SE": (
        [("Åsa", "asa"), ("Søren", "soren"), ("Øyvind", "oyvind"), ("Linnéa", "linnea")],
        [("Lindqvist", "lindqvist"), ("Ærøe", "aeroe"), ("Håkansson", "hakansson"), ("Berg", "berg")],
        "gf", ["Stockholm", "Göteborg", "Malmö"]),
    "el-GR": (
        [("Γιώργος", "giorgos"), ("Ελένη", "eleni"), ("Δημήτρης", "dimitris")],
        [("Παπαδόπουλος", "papadopoulos"), ("Οικονόμου", "oikonomou")],
        "gf", ["Αθήνα", "Θεσσαλονίκη"]),
    "ru-RU": (
        [("Дмитрий", "dmitry"), ("Анна", "anna"), ("Сергей", "sergey"), ("Ольга", "olga")],
        [("Иванов", "ivanov"), ("Смирнова", "smirnova"), ("Кузнецов", "kuznetsov")],
        "gf", ["Москва", "Санкт-Петербург", "Новосибирск"]),
    "ar-EG": (
        [("محمد", "mohamed"), ("فاطمة", "fatma"), ("أحمد", "ahmed"), ("مريم", "mariam")],
        [("العلي", "alali"), ("حسن", "hassan"), ("الشريف", "elsherif"), ("منصور", "mansour")],
        "gf", ["القاهرة", "الإسكندرية", "Cairo"]),
    "he-IL": (
        [("נועה", "noa"), ("דוד", "david"), ("תמר", "tamar"), ("יוסי", "yossi")],
        [("כהן", "cohen"), ("לוי", "levi"), ("מזרחי", "mizrahi")],
        "gf", ["תל אביב", "ירושלים", "Haifa"]),
    "hi-IN": (
        [("प्रिया", "priya"), ("Aarav", "aarav"), ("अनन्या", "ananya"), ("Rohan", "rohan")],
        [("शर्मा", "sharma"), ("Patel", "patel"), ("Iyer", "iyer"), ("Reddy", "reddy")],
        "gf", ["Bengaluru", "मुंबई", "Pune", "Chennai"]),
    "ja-JP": (
        [("美咲", "misaki"), ("翔太", "shota"), ("陽菜", "hina"), ("蓮", "ren"), ("さくら", "sakura")],
        [("佐藤", "sato"), ("鈴木", "suzuki"), ("高橋", "takahashi"), ("渡辺", "watanabe")],
        "fg", ["東京", "大阪", "Kyoto", "札幌"]),
    "zh-CN": (
        [("伟", "wei"), ("芳", "fang"), ("秀英", "xiuying"), ("子涵", "zihan")],
        [("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu")],
        "fg-", ["北京", "上海", "深圳", "Chengdu"]),
    "ko-KR": (
        [("민준", "minjun"), ("서연", "seoyeon"), ("지호", "jiho")],
        [("김", "kim"), ("이", "lee"), ("박", "park")],
        "fg-", ["서울", "부산", "Incheon"]),
    "vi-VN": (
        [("Hương", "huong"), ("Minh", "minh"), ("Thảo", "thao")],
        [("Nguyễn", "nguyen"), ("Trần", "tran"), ("Phạm", "pham")],
        "fg", ["Hà Nội", "Thành phố Hồ Chí Minh", "Đà Nẵng"]),
}
LOCALE_WEIGHTS = {
    "en-US": 22, "en-GB": 7, "en-IE": 2, "fr-FR": 11, "de-DE": 8, "es-ES": 5, "pt-BR": 5,
    "pl-PL": 3, "tr-TR": 3, "sv-SE": 3, "el-GR": 2, "ru-RU": 3, "ar-EG": 4, "he-IL": 3,
    "hi-IN": 5, "ja-JP": 5, "zh-CN": 4, "ko-KR": 3, "vi-VN": 2,
}
COUNTRY = {loc: loc.split("-")[1] for loc in PEOPLE}
TIMEZONES = {
    "US": ["America/New_York", "America/Chicago", "America/Los_Angeles"], "GB": ["Europe/London"],
    "IE": ["Europe/Dublin"], "FR": ["Europe/Paris"], "DE": ["Europe/Berlin"], "ES": ["Europe/Madrid"],
    "BR": ["America/Sao_Paulo"], "PL": ["Europe/Warsaw"], "TR": ["Europe/Istanbul"],
    "SE": ["Europe/Stockholm"], "GR": ["Europe/Athens"], "RU": ["Europe/Moscow"], "EG": ["Africa/Cairo"],
    "IL": ["Asia/Jerusalem"], "IN": ["Asia/Kolkata"], "JP": ["Asia/Tokyo"], "CN": ["Asia/Shanghai"],
    "KR": ["Asia/Seoul"], "VN": ["Asia/Ho_Chi_Minh"],
}
STREETS = {
    "US": ["Main Street", "Elm Street", "5th Avenue"], "GB": ["High Street", "Station Road"],
    "IE": ["O'Connell Street", "Grafton Street"], "FR": ["rue de la Paix", "boulevard Saint-Michel", "rue de Rivoli"],
    "DE": ["Hauptstraße", "Schloßallee", "Königsallee"], "ES": ["Calle Mayor", "Avenida de la Constitución"],
    "BR": ["Rua Augusta", "Avenida Paulista"], "PL": ["ul. Długa", "ul. Żeromskiego"],
    "TR": ["Bağdat Caddesi", "İstiklal Caddesi"], "SE": ["Storgatan", "Drottninggatan"],
    "GR": ["Οδός Ερμού", "Λεωφόρος Αλεξάνδρας"], "RU": ["Тверская улица", "Невский проспект"],
    "EG": ["شارع التحرير", "Corniche El Nil"], "IL": ["רחוב הרצל", "Rothschild Blvd"],
    "IN": ["MG Road", "Linking Road"], "JP": ["銀座", "表参道"], "CN": ["南京路", "长安街"],
    "KR": ["세종대로", "Teheran-ro"], "VN": ["Phố Huế", "Đường Lê Lợi"],
}
DB_DOMAINS = ["example.com"] * 5 + ["example.org"] * 2 + ["example.net"] * 2 + ["mail.example"]
SOCIAL_DOMAINS = ["mail.example", "example.com", "example.net"]
SAML_DOMAINS = {"acme-saml": "acme.example", "globex-saml": "globex.example"}
ROLES = ["viewer", "editor", "admin", "billing", "support", "auditor", "owner"]
GROUPS = ["engineering", "sales", "marketing", "support", "finance", "ops", "research", "équipe-nord"]
THEMES = ["light", "dark", "system", "high-contrast"]
FIRST_SOURCES = ["web", "ios", "android", "partner-api", "import"]


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.emails = {}  # connection -> set of emails (membership only, never iterated)
        self.user_ids = set()

    # -- small helpers
    def pick(self, seq):
        return seq[self.r.randrange(len(seq))]

    def chance(self, p):
        return self.r.random() < p

    def hex(self, n):
        return "".join("0123456789abcdef"[self.r.randrange(16)] for _ in range(n))

    def locale(self):
        return self.r.choices(list(LOCALE_WEIGHTS), weights=list(LOCALE_WEIGHTS.values()))[0]

    def person(self, loc):
        givens, families, order, _ = PEOPLE[loc]
        g, ga = self.pick(givens)
        f, fa = self.pick(families)
        if order == "gf":
            full = g + " " + f
        elif order == "fg":
            full = f + " " + g
        else:
            full = f + g
        return g, f, full, ga, fa

    def email(self, connection, ga, fa, domains):
        taken = self.emails.setdefault(connection, set())
        style = self.r.randrange(6)
        local = [ga + "." + fa, ga + fa, ga[0] + fa, ga + "_" + fa, fa + ga[0], ga + "." + fa[0]][style]
        if self.chance(0.3):
            local += str(self.r.randrange(1, 100))
        domain = self.pick(domains)
        addr = local + "@" + domain
        n = 2
        while addr in taken:
            addr = local + str(n) + "@" + domain
            n += 1
        taken.add(addr)
        return addr

    # -- time
    def times(self, created, logged_in):
        """updated_at, last_login for a user created at `created` (ms)."""
        if not logged_in:
            updated = created if self.chance(0.6) else self.r.randint(created, UPDATED_TO)
            return updated, None
        last_login = self.r.randint(created, UPDATED_TO)
        if self.chance(0.2):
            last_login = self.r.randint(created, min(created + 30 * DAY, UPDATED_TO))
        updated = min(last_login + self.r.randrange(0, 1500), UPDATED_TO)
        if self.chance(0.1):
            # A later profile or metadata change, without a login.
            updated = self.r.randint(updated, UPDATED_TO)
        return updated, last_login

    def ip(self):
        if self.chance(0.2):
            return "2001:db8:%x:%x::%x" % (self.r.randrange(65536), self.r.randrange(65536), self.r.randrange(1, 65536))
        net = self.pick(["192.0.2", "198.51.100", "203.0.113"])
        return "%s.%d" % (net, self.r.randrange(1, 255))

    def object_id(self, created_ms):
        """A Mongo-style ObjectId as Auth0 uses: 4 bytes of creation time, then 8 random bytes."""
        while True:
            oid = "%08x" % (created_ms // 1000) + self.hex(16)
            if oid not in self.user_ids:
                self.user_ids.add(oid)
                return oid

    # -- metadata
    def address(self, loc, city=None):
        _, _, _, cities = PEOPLE[loc]
        addr = {
            "label": self.pick(["home", "work", "billing", "shipping"]),
            "line1": "%d %s" % (self.r.randrange(1, 300), self.pick(STREETS[COUNTRY[loc]])),
            "city": city or self.pick(cities),
            "postal_code": "%05d" % self.r.randrange(100000),
            "country": COUNTRY[loc],
        }
        if self.chance(0.15):
            addr["line2"] = self.pick(["Apt 4B", "Bâtiment C, 3ᵉ étage", "c/o Müller", "Suite 100, Floor 2", None])
        if self.chance(0.1):
            addr["geo"] = {"lat": round(self.r.uniform(-90, 90), 6), "lng": round(self.r.uniform(-180, 180), 6)}
        return addr

    def user_metadata(self, loc):
        tz = self.pick(TIMEZONES[COUNTRY[loc]])
        um = {
            "locale": loc,
            "theme": self.pick(THEMES),
            "preferences": {
                "timezone": tz,
                "newsletter": self.chance(0.4),
                "notifications": {
                    "email": self.chance(0.7),
                    "sms": self.chance(0.2),
                    "push": {
                        "enabled": self.chance(0.5),
                        "quiet_hours": {"start": "22:00", "end": "07:00"} if self.chance(0.5) else {},
                    },
                },
            },
        }
        if self.chance(0.75):
            um["addresses"] = [self.address(loc) for _ in range(self.r.choice([1, 1, 1, 2, 2, 3]))]
        if self.chance(0.3):
            um["favorite color"] = self.pick(["blue", "vert", "赤", "أزرق", "כחול", "#ff8800", "transparent"])
        if self.chance(0.3):
            um["opt-in"] = {"marketing": self.chance(0.3), "research": self.chance(0.5), "since": iso(self.r.randint(CREATED_FROM, CREATED_TO))}
        if self.chance(0.2):
            um["phone"] = "+%d%09d" % (self.r.randrange(1, 99), self.r.randrange(10**9))
        if self.chance(0.1):
            um["pronouns"] = self.pick(["she/her", "he/him", "they/them", None])
        return um

    def app_metadata(self, connection):
        plan = self.r.choices(["free", "pro", "enterprise"], weights=[60, 28, 12])[0]
        roles = ["viewer"] if plan == "free" else self.r.sample(ROLES, self.r.randrange(1, 4))
        am = {"plan": plan, "roles": roles}
        if plan != "free" or self.chance(0.3):
            am["groups"] = self.r.sample(GROUPS, self.r.randrange(0, 3))
        am["flags"] = {
            "beta_features": self.chance(0.2),
            "mfa_enforced": plan == "enterprise" or self.chance(0.1),
            "legacy_ui": self.chance(0.05),
        }
        if plan != "free":
            am["billing"] = {
                "customer_ref": "cus_" + self.hex(14),
                "seats": self.r.randrange(1, 500) if plan == "enterprise" else self.r.randrange(1, 10),
                "monthly_price": self.pick([9.99, 19.5, 49.0, 99.95, 0.1, 1249.75]),
                "currency": self.pick(["USD", "EUR", "GBP", "JPY"]),
            }
        am["signup_source"] = "import" if connection == "legacy-db" else self.pick(FIRST_SOURCES)
        if connection == "legacy-db":
            am["legacy"] = {
                "source_system": self.pick(["oldcrm", "forum-v2", "shopify-export"]),
                "legacy_id": self.r.randrange(1, 2_000_000),
                "password_migrated": self.chance(0.6),
                "imported_fields": self.r.sample(["phone", "address", "birthday", "avatar"], self.r.randrange(0, 4)),
            }
        return am


# Hand-written metadata fragments, each given to several users so that every edge case is
# present more than once. ("user" or "app", fragment); fragments are merged into the
# generated metadata object (created when the user has none).
LONG_TEXT_PARTS = [
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ",
    "Portez ce vieux whisky au juge blond qui fume. ",
    "Victor jagt zwölf Boxkämpfer quer über den großen Sylter Deich. ",
    "いろはにほへと ちりぬるを わかよたれそ つねならむ。",
    "صِف خَلقَ خَودِ كَمِثلِ الشَمسِ إِذ بَزَغَت ",
    "דג סקרן שט בים מאוכזב ולפתע מצא חברה. ",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.\n",
    "Commas, \"quotes\", and\ttabs; ",
    "🦊🐶🐱 ",
]


def long_text(r, size):
    out = []
    n = 0
    while n < size:
        part = LONG_TEXT_PARTS[r.randrange(len(LONG_TEXT_PARTS))]
        out.append(part)
        n += len(part.encode("utf-8"))
    return "".join(out)


def special_fragments(r):
    return [
        ("app", {"external_ids": {"legacy": 9007199254740993, "billing": 18446744073709551615,
                                  "ledger": -9223372036854775808, "delta": -42, "zero": 0}}),
        ("app", {"account_number": 9007199254740993, "quota_bytes": 1099511627776}),
        ("app", {"counters": [9007199254740992, 9007199254740993, -9007199254740993, 12345678901234567890]}),
        ("user", {"stats": {"ratio": 0.1, "epsilon": 1e-7, "pi": 3.141592653589793, "score": -2.5,
                            "sum": 0.30000000000000004, "tiny": 5e-324, "huge": 1.7976931348623157e308,
                            "avogadro": 6.02214076e23, "big_round": 1e21, "just_under": 1e20}}),
        ("user", {"location": {"lat": 48.858844, "lng": 2.294351, "accuracy_m": 12.5}}),
        ("user", {"middle_name": None, "company": None, "birthday": "1990-02-29", "preferences_v1": None}),
        ("user", {"tags": [], "settings": {}, "drafts": [{}], "history": {"logins": []}}),
        ("app", {"permissions": {}, "entitlements": [], "trial": None}),
        ("user", {"favorite color": "teal", "opt-in": True, "last, first": "Doe, Jane",
                  'key "quoted"': "yes", "a/b:c#d@e": 1, "città": "Roma", "名前": "さくら"}),
        ("user", {"formula_company": "=SUM(A1)", "formula_plus": "+1", "formula_minus": "-2",
                  "formula_at": "@cmd", "formula_link": '=HYPERLINK("http://evil.example","click")',
                  "formula_dde": "=cmd|' /C calc'!A0", "formula_tab": "\t=1+1"}),
        ("user", {"signature": "Best,\nJane \"JD\" Doe\n\tAcme, Inc.", "csv_line": 'a,b,"c, d",e',
                  "windows_path": "C:\\Users\\jane\\Documents", "crlf": "line one\r\nline two",
                  "unicode_line_sep": "before\u2028after", "control": "bell\u0007unit\u001fend"}),
        ("user", {"display_name": "Zoë 🦄 Ünïcødé", "emoji": "👨‍👩‍👧‍👦 🇫🇷 👍🏽 🏳️‍🌈", "music": "𝄞 clef",
                  "combining": "e\u0301le\u0300ve", "bidi": "مرحبا Hello שלום 123", "cjk": "東京都渋谷区神南1-2-3",
                  "zero_width": "a\u200bb\u200dc", "bom": "\ufeffstarts with BOM"}),
        ("user", {"bio": long_text(r, r.randrange(2048, 5120))}),
        ("app", {"audit_note": long_text(r, r.randrange(2048, 4096))}),
        ("user", {"deep": {"l1": {"l2": {"l3": {"l4": {"l5": {"l6": {"value": "bottom", "list": [1, [2, [3, [4]]]]}}}}}}}}),
        ("app", {"mixed": [1, "two", True, None, 4.5, {"five": 5}, [6], []]}),
        ("user", {"devices": [{"type": "phone", "os": "iOS", "version": "17.4.1", "trusted": True,
                               "push_token": None, "apps": [{"id": "com.example.app", "builds": [101, 102]}]},
                              {"type": "laptop", "os": "macOS", "version": "14.4", "trusted": False}]}),
        ("user", {"addresses": []}),
        ("user", {"empty_string": "", "space": " ", "zero": 0, "false": False, "negative_float": -0.5}),
    ]


def main():
    g = Gen(SEED)
    r = g.r
    users = []

    # Plan who is who. Bulk-import members are the first users of their connection.
    plan = []
    for connection, n in COUNTS.items():
        plan.extend((connection, i) for i in range(n))

    people_by_email = []  # (email, given, family, full, ascii) for cross-connection duplicates
    for connection, i in plan:
        loc = g.locale()
        given, family, full, ga, fa = g.person(loc)
        social = connection == "google-oauth2"
        saml = connection.endswith("-saml")

        if connection == "legacy-db" and i < LEGACY_IMPORT_SIZE:
            created = LEGACY_IMPORT_MS
        elif connection == "Username-Password-Authentication" and i < PARTNER_IMPORT_SIZE:
            created = PARTNER_IMPORT_SECOND + r.choice([0, 0, 0, 17, 17, 233, 234, 871, r.randrange(1000)])
        else:
            created = r.randint(CREATED_FROM, CREATED_TO)

        if social and i < 8 and people_by_email:
            # The same person signed up with a password earlier and with Google later.
            email, given, family, full, loc = people_by_email.pop(r.randrange(len(people_by_email)))
            g.emails.setdefault(connection, set()).add(email)
        elif social:
            email = g.email(connection, ga, fa, SOCIAL_DOMAINS)
        elif saml:
            email = g.email(connection, ga[0], fa, [SAML_DOMAINS[connection]])
        else:
            email = g.email(connection, ga, fa, DB_DOMAINS)
            if connection == "Username-Password-Authentication" and r.random() < 0.05:
                people_by_email.append((email, given, family, full, loc))

        never_logged_in = (connection == "legacy-db" and r.random() < 0.35) or r.random() < 0.08
        updated, last_login = g.times(created, not never_logged_in)

        u = {"created_at": iso(created), "email": email}
        if not (saml and r.random() < 0.3):
            u["email_verified"] = True if social else r.random() < (0.9 if saml else 0.7)
        has_names = social or saml or r.random() < 0.4
        if has_names:
            u["family_name"] = family
            u["given_name"] = given
        if social:
            uid = "%021d" % r.randrange(10**20, 10**21)
            identity = {"connection": connection, "user_id": uid, "provider": "google-oauth2", "isSocial": True}
            user_id = "google-oauth2|" + uid
        elif saml:
            uid = connection + "|" + email
            identity = {"connection": connection, "user_id": uid, "provider": "samlp", "isSocial": False}
            user_id = "samlp|" + uid
        else:
            uid = g.object_id(created)
            identity = {"connection": connection, "user_id": uid, "provider": "auth0", "isSocial": False}
            user_id = "auth0|" + uid
        u["identities"] = [identity]
        u["name"] = full if has_names else email
        local = email.split("@")[0]
        u["nickname"] = local
        if social:
            u["picture"] = "https://lh3.googleusercontent.com/a/ACg8oc" + "".join(
                r.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") for _ in range(48)) + "=s96-c"
        else:
            initials = (ga[0] + fa[0]) if has_names else local[:2]
            u["picture"] = ("https://s.gravatar.com/avatar/" + hashlib.md5(email.encode(), usedforsecurity=False).hexdigest()
                            + "?s=480&r=pg&d=https%3A%2F%2Fcdn.auth0.com%2Favatars%2F" + initials.lower() + ".png")
        u["updated_at"] = iso(updated)
        u["user_id"] = user_id

        kind = r.choices(["both", "user", "app", "none"], weights=[62, 12, 13, 13])[0]
        if connection == "legacy-db" and kind in ("user", "none"):
            kind = "both" if kind == "user" else "app"  # migrated users always carry their legacy ids
        if kind in ("both", "user"):
            u["user_metadata"] = g.user_metadata(loc)
        if kind in ("both", "app"):
            u["app_metadata"] = g.app_metadata(connection)
        if last_login is not None:
            u["last_ip"] = g.ip()
            u["last_login"] = iso(last_login)
            u["logins_count"] = r.randrange(1, 30) if r.random() < 0.8 else r.randrange(30, 5000)
        users.append(u)

    # A few users whose user_metadata was cleared to an empty object.
    cleared = r.sample(range(len(users)), 3)
    for idx in cleared:
        users[idx]["user_metadata"] = {}
    # Spread the hand-written edge cases: each fragment goes to 4 other users picked at random.
    others = [i for i in range(len(users)) if i not in cleared]
    for which, fragment in special_fragments(r):
        key = "user_metadata" if which == "user" else "app_metadata"
        for idx in r.sample(others, 4):
            target = users[idx].setdefault(key, {})
            target.update(json.loads(json.dumps(fragment)))  # a fresh copy per user
    # One nickname that is itself a spreadsheet formula.
    users[r.randrange(len(users))]["nickname"] = "=1+2"

    users = [{k: u[k] for k in KEY_ORDER if k in u} for u in users]
    users.sort(key=lambda u: (u["created_at"], u["user_id"]))
    lines = [dump(u) for u in users]
    check(lines)
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")
    print("wrote %d users to %s" % (len(lines), OUT))


ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def check(lines):
    """Fail loudly if the output breaks any rule this file promises."""
    seen_ids = set()
    seen_emails = set()
    for n, line in enumerate(lines, 1):
        u = json.loads(line)
        where = "line %d (%s)" % (n, u.get("user_id"))
        keys = list(u)
        assert keys == [k for k in KEY_ORDER if k in u], where + ": key order"
        assert u["user_id"] not in seen_ids, where + ": duplicate user_id"
        seen_ids.add(u["user_id"])
        ident = u["identities"][0]
        assert u["user_id"] == ident["provider"] + "|" + ident["user_id"], where + ": user_id vs identity"
        if ident["provider"] == "auth0":
            assert re.fullmatch(r"[0-9a-f]{24}", ident["user_id"]), where + ": database user_id"
        pair = (ident["connection"], u["email"])
        assert pair not in seen_emails, where + ": duplicate email in connection"
        seen_emails.add(pair)
        assert u["email"] == u["email"].lower(), where + ": email case"
        for k in ("created_at", "updated_at", "last_login"):
            if k in u:
                assert ISO_RE.match(u[k]), where + ": " + k
        assert u["created_at"] <= u["updated_at"], where + ": updated_at before created_at"
        if "last_login" in u:
            assert u["created_at"] <= u["last_login"], where + ": last_login before created_at"
        for k in ("user_metadata", "app_metadata"):
            if k in u:
                check_keys(u[k], where + " " + k)
        for k in u.get("app_metadata", {}):
            assert k not in RESERVED_APP_METADATA, where + ": reserved app_metadata key " + k


def check_keys(value, where):
    if isinstance(value, dict):
        for k, v in value.items():
            assert "." not in k and "$" not in k, where + ": bad key " + repr(k)
            check_keys(v, where)
    elif isinstance(value, list):
        for v in value:
            check_keys(v, where)


if __name__ == "__main__":
    main()
