"""The labelled query set: generated journals deposited through the real pipeline, and queries with damage.

Journals have full titles and ISO 4 style abbreviations, print and electronic
ISSNs (often only one of them deposited), volumes of four issues paginated
through the volume, some e-location pages (``e10234``), and authors whose
surnames carry accents, umlauts, ligature letters and particles. Some issues
are held back (never deposited) and some journals are never deposited at all:
queries for their articles must find nothing.

Each query is derived from one article with one kind of realistic damage; the
label is the DOI it must find (or None).
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from agency.metadata.identifiers import issn_check_char

PREFIX = "10.5555"
SUBJECTS = [
    ("Synthetic Chemistry", "Synth Chem"), ("Marine Biology", "Mar Biol"), ("Applied Physics", "Appl Phys"),
    ("Computational Linguistics", "Comput Linguist"), ("Molecular Medicine", "Mol Med"),
    ("Theoretical Ecology", "Theor Ecol"), ("Quantum Materials", "Quantum Mater"),
    ("Agricultural Economics", "Agric Econ"), ("Clinical Neuroscience", "Clin Neurosci"),
    ("Urban Geography", "Urban Geogr"), ("Experimental Psychology", "Exp Psychol"),
    ("Structural Engineering", "Struct Eng"), ("Veterinary Science", "Vet Sci"),
    ("Atmospheric Research", "Atmos Res"), ("Medieval History", "Mediev Hist"),
    ("Plant Pathology", "Plant Pathol"), ("Mathematical Analysis", "Math Anal"),
    ("Environmental Management", "Environ Manage"), ("Organic Geochemistry", "Org Geochem"),
    ("Social Policy", "Soc Policy"), ("Nuclear Instruments", "Nucl Instrum"),
    ("Food Microbiology", "Food Microbiol"), ("Comparative Literature", "Comp Lit"),
    ("Biomedical Optics", "Biomed Opt"),
]
FORMS = [("Journal of {}", "J {}"), ("Annals of {}", "Ann {}"), ("International Journal of {}", "Int J {}"),
         ("Letters in {}", "Lett {}"), ("Reviews of {}", "Rev {}"), ("Bulletin of the Society of {}", "Bull Soc {}"),
         ("Archives of {}", "Arch {}"), ("Advances in {}", "Adv {}")]
SURNAMES = [
    "Müller", "Schröder", "Gößling", "García", "Núñez", "Nguyễn", "Kowalski", "Dvořák", "Łukasiewicz",
    "Østergaard", "Ångström", "O'Brien", "van der Berg", "Smith", "Tanaka", "Okafor", "Johansson", "Haddad",
    "Ivanova", "Rossi", "Dubois", "Silva", "Kim", "Novak", "Zhang", "Patel", "Cohen", "Fischer", "Yilmaz",
    "Papadopoulos", "Horváth", "Kuznetsov", "Fernández", "Wójcik", "Lindqvist", "Mahlangu", "Achebe",
    "Bergström", "Chatterjee", "Delacroix", "Eriksen", "Fontaine", "Gonçalves", "Hernández", "Ishikawa",
    "Jankowski", "Kaczmarek", "Laurent", "Moreau", "Nakamura", "Oyelaran", "Petrović", "Quispe", "Rahman",
    "Sørensen", "Takahashi", "Urbański", "Vasquez", "Weiß", "Xu", "Yamamoto", "Zimmermann", "Abdullah",
    "Bianchi", "Costa", "Da Silva", "El-Sayed", "Fitzgerald", "Grünewald", "Hoffmann", "Iglesias",
    "Jiménez", "Koç", "Lefèvre", "Mäkinen", "Nováková", "Öztürk", "Pereira", "Rodríguez", "Schäfer",
    "Thorsen", "Uğur", "Vukovic", "Wagner", "Zielińska", "Ahmed", "Brennan", "Castillo", "Dimitrov",
]
GIVEN = ["Ana", "Jun", "Maria", "Olu", "Piotr", "Yuki", "Sean", "Elena", "Marco", "Claire", "Omar", "Lars"]
TRANSLITERATIONS = {"ü": "ue", "ö": "oe", "ä": "ae", "ß": "ss", "ø": "oe", "å": "aa", "ł": "l", "Ł": "L",
                    "Ø": "Oe", "Å": "Aa", "Ö": "Oe", "Ü": "Ue"}


def make_issn(rnd: random.Random) -> str:
    first7 = "".join(str(rnd.randrange(10)) for _ in range(7))
    return f"{first7[:4]}-{first7[4:]}{issn_check_char(first7)}"


@dataclass
class Journal:
    title: str
    abbrev: str
    print_issn: str
    electronic_issn: str
    deposited_media: tuple[str, ...]  # which ISSNs the deposits carry
    deposit_abbrev: bool
    deposited: bool = True


@dataclass
class Article:
    doi: str
    journal: Journal
    volume: int
    issue: int
    first_page: str
    year: int
    surnames: list[str]
    title: str
    deposited: bool = True
    deposited_surnames: list[str] | None = None  # what the deposit says, when it garbles the names


@dataclass
class LabelledQuery:
    line: str
    expected: str | None  # the DOI the line must find, None when nothing may be found
    damage: str


@dataclass
class GeneratedCorpus:
    journals: list[Journal] = field(default_factory=list)
    articles: list[Article] = field(default_factory=list)


def generate(seed: int = 4, journals: int = 20, unknown_journals: int = 6, volumes: int = 2,
             per_issue: int = 6) -> GeneratedCorpus:
    rnd = random.Random(seed)
    out = GeneratedCorpus()
    pairs = [(f.format(s), a.format(sa)) for s, sa in SUBJECTS for f, a in FORMS]
    rnd.shuffle(pairs)
    serial = 0
    for number in range(journals + unknown_journals):
        title, abbrev = pairs[number]
        media = rnd.choice([("print", "electronic"), ("electronic",), ("print",)])
        journal = Journal(title, abbrev, make_issn(rnd), make_issn(rnd), media, rnd.random() < 0.5,
                          deposited=number < journals)
        out.journals.append(journal)
        first_year = rnd.randrange(1995, 2020)
        held_issue = rnd.randrange(1, 5) if rnd.random() < 0.5 else None
        elocation = rnd.random() < 0.2
        for v in range(1, volumes + 1):
            page = 1
            for issue in range(1, 5):
                for _ in range(per_issue):
                    serial += 1
                    first = f"e{10000 + serial}" if elocation else str(page)
                    page += rnd.randrange(4, 30)
                    names = [rnd.choice(SURNAMES) for _ in range(rnd.randrange(1, 5))]
                    words = " ".join(rnd.choice(["coral", "lattice", "protein", "network", "carbon", "flux",
                                                 "model", "inference", "dynamics", "cortex"]) for _ in range(6))
                    out.articles.append(Article(
                        f"{PREFIX}/lab.{serial}", journal, v, issue, first, first_year + v - 1, names,
                        words.capitalize(),
                        deposited=journal.deposited and not (v == volumes and issue == held_issue)))
    return out


def deposit_documents(corpus: GeneratedCorpus) -> list[bytes]:
    """One doi_batch per journal with every deposited issue of it."""
    documents = []
    for n, journal in enumerate(j for j in corpus.journals if j.deposited):
        issues: dict[tuple[int, int], list[Article]] = {}
        for a in corpus.articles:
            if a.journal is journal and a.deposited:
                issues.setdefault((a.volume, a.issue), []).append(a)
        documents.append(_doi_batch(journal, issues, f"labelled-{n}"))
    return documents


def _doi_batch(journal: Journal, issues: dict[tuple[int, int], list[Article]], batch_id: str) -> bytes:
    ns = "http://www.crossref.org/schema/5.3.1"
    issn_xml = "".join(f'<issn media_type="{m}">{journal.print_issn if m == "print" else journal.electronic_issn}'
                       "</issn>" for m in journal.deposited_media)
    abbrev = f"<abbrev_title>{escape(journal.abbrev)}</abbrev_title>" if journal.deposit_abbrev else ""
    blocks = []
    for (volume, issue), articles in sorted(issues.items()):
        year = articles[0].year
        items = []
        for a in articles:
            people = "".join(
                f'<person_name contributor_role="author" sequence="{"first" if i == 0 else "additional"}">'
                f"<given_name>{escape(GIVEN[i % len(GIVEN)])}</given_name><surname>{escape(s)}</surname></person_name>"
                for i, s in enumerate(a.deposited_surnames or a.surnames))
            items.append(
                f'<journal_article publication_type="full_text"><titles><title>{escape(a.title)}</title></titles>'
                f"<contributors>{people}</contributors>"
                f'<publication_date media_type="online"><year>{a.year}</year></publication_date>'
                f"<pages><first_page>{a.first_page}</first_page></pages>"
                f"<doi_data><doi>{a.doi}</doi><resource>https://example.org/{a.doi}</resource></doi_data>"
                "</journal_article>")
        blocks.append(
            f'<journal><journal_metadata language="en"><full_title>{escape(journal.title)}</full_title>{abbrev}'
            f"{issn_xml}</journal_metadata><journal_issue>"
            f'<publication_date media_type="online"><year>{year}</year></publication_date>'
            f"<journal_volume><volume>{volume}</volume></journal_volume><issue>{issue}</issue></journal_issue>"
            + "".join(items) + "</journal>")
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<doi_batch xmlns="{ns}" version="5.3.1"><head>'
            f"<doi_batch_id>{batch_id}</doi_batch_id><timestamp>20240101000000</timestamp>"
            "<depositor><depositor_name>Lab</depositor_name><email_address>lab@example.org</email_address>"
            "</depositor><registrant>Lab Press</registrant></head><body>" + "".join(blocks)
            + "</body></doi_batch>").encode()


# -- damage -----------------------------------------------------------------------------

def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def transliterate(name: str) -> str:
    return strip_accents("".join(TRANSLITERATIONS.get(c, c) for c in name))


def misspell(rnd: random.Random, name: str) -> str:
    letters = list(name)
    positions = [i for i, c in enumerate(letters) if c.isalpha() and i > 0]
    if len(positions) < 4:
        return name
    i = rnd.choice(positions[:-1])
    kind = rnd.choice(["swap", "drop", "double", "replace"])
    if kind == "swap":
        letters[i], letters[i + 1] = letters[i + 1], letters[i]
    elif kind == "drop":
        del letters[i]
    elif kind == "double":
        letters.insert(i, letters[i])
    else:
        letters[i] = rnd.choice("aeiourstnl")
    return "".join(letters)


def to_roman(n: int) -> str:
    table = [(10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]
    out = ""
    for value, numeral in table:
        while n >= value:
            out += numeral
            n -= value
    return out


DAMAGES = ["clean", "abbreviated title", "misspelled author", "transliterated author", "missing issue",
           "year off by one", "other-medium ISSN", "page range", "roman volume", "abbreviated + year off by one",
           "misspelled + missing issue", "title only, no ISSN", "author with initial", "missing volume and issue",
           "transliterated + other-medium ISSN"]


def journal_query(rnd: random.Random, a: Article, damage: str, key: str) -> str:
    j = a.journal
    deposited_issn = j.electronic_issn if "electronic" in j.deposited_media else j.print_issn
    issn, title = deposited_issn, ""
    author, volume, issue = a.surnames[0], str(a.volume), str(a.issue)
    page, year = a.first_page, str(a.year)
    if "abbreviated" in damage:
        issn, title = "", j.abbrev
    if damage == "title only, no ISSN":
        issn, title = "", j.title
    if "misspelled" in damage:
        author = misspell(rnd, author)
    if damage.startswith("transliterated"):
        author = transliterate(author)
    if damage == "author with initial":
        author = f"{author} {GIVEN[0][0]}."
    if damage == "missing volume and issue":
        volume = issue = ""
    if "missing issue" in damage:
        issue = ""
    if "year off by one" in damage:
        year = str(a.year + rnd.choice([-1, 1]))
    if damage.endswith("other-medium ISSN"):
        other = j.print_issn if deposited_issn == j.electronic_issn else j.electronic_issn
        if len(j.deposited_media) == 2:
            other = j.print_issn
        issn, title = other, j.title
    if damage == "page range" and page.isdigit():
        page = f"{page}-{int(page) + rnd.randrange(3, 20)}"
    if damage == "roman volume":
        volume = to_roman(a.volume)
    return "|".join([issn, title, author, volume, issue, page, year, "full_text", key, ""])


def labelled_queries(corpus: GeneratedCorpus, seed: int = 7) -> list[LabelledQuery]:
    rnd = random.Random(seed)
    queries = []
    for n, a in enumerate(corpus.articles):
        damage = DAMAGES[n % len(DAMAGES)]
        line = journal_query(rnd, a, damage, f"g{n}")
        queries.append(LabelledQuery(line, a.doi if a.deposited else None,
                                     damage if a.deposited else f"never deposited ({damage})"))
    return queries


def corpus_queries(session) -> list[LabelledQuery]:
    """Queries derived from the indexed records of the shared corpus (journal articles, chapters, papers)."""
    from sqlalchemy import select

    from agency.models import MetadataIdentifier, MetadataRecord

    identifiers: dict[str, dict[str, list[str]]] = {}
    for key, kind, raw in session.execute(select(MetadataIdentifier.doi_key, MetadataIdentifier.kind,
                                                 MetadataIdentifier.raw)):
        identifiers.setdefault(key, {}).setdefault(kind, []).append(raw)
    queries, seen = [], {}
    rows = session.scalars(select(MetadataRecord).where(MetadataRecord.content_type.in_(
        ("journal_article", "conference_paper", "content_item")), MetadataRecord.doi.not_like(f"{PREFIX}/lab.%"),
        MetadataRecord.doi.not_like(f"{PREFIX}/hard.%"))
        .order_by(MetadataRecord.doi_key))
    for r in rows:
        if not r.first_page and not r.first_author_surname:
            continue
        ids = identifiers.get(r.doi_key, {})
        if r.content_type == "journal_article":
            fields = [(ids.get("issn") or [""])[0], r.journal_title or "", r.first_author_surname or "",
                      r.volume or "", r.issue or "", r.first_page or "", str(r.year or ""), "full_text",
                      f"c{len(queries)}", ""]
        else:
            fields = [(ids.get("isbn") or ids.get("issn") or [""])[0], r.series_title or "", r.volume_title or "",
                      r.first_author_surname or "", r.volume or "", r.edition_number or "", r.first_page or "",
                      str(r.year or ""), r.component_number or "", "full_text", f"c{len(queries)}", ""]
        if not fields[0] and not fields[1] and not fields[2]:
            continue
        signature = tuple(f for i, f in enumerate(fields) if i not in (len(fields) - 2, len(fields) - 1))
        if signature in seen:  # the same metadata under two DOIs: no single right answer
            queries[seen[signature]].expected = "ambiguous"
            continue
        seen[signature] = len(queries)
        queries.append(LabelledQuery("|".join(fields), r.doi, f"corpus {r.content_type}"))
    return [q for q in queries if q.expected != "ambiguous"]


# -- the hard kinds (issue 19): sibling journals, ISSN typos, junk surnames, similar co-authors -----------

SIBLINGS = [  # (journal deposited here, its abbreviation, a sibling sharing words, its abbreviation)
    ("Journal of Open Source Software", "J Open Source Softw", "Journal of Open Source Education", "J Open Source Educ"),
    ("Annals of Marine Biology", "Ann Mar Biol", "Annals of Marine Geology", "Ann Mar Geol"),
    ("International Journal of Applied Physics", "Int J Appl Phys", "International Journal of Applied Mathematics",
     "Int J Appl Math"),
    ("Reviews of Clinical Neuroscience", "Rev Clin Neurosci", "Reviews of Clinical Psychology", "Rev Clin Psychol"),
    ("Letters in Organic Geochemistry", "Lett Org Geochem", "Letters in Organic Chemistry", "Lett Org Chem"),
    ("Bulletin of Food Microbiology", "Bull Food Microbiol", "Bulletin of Food Chemistry", "Bull Food Chem"),
    ("Archives of Plant Pathology", "Arch Plant Pathol", "Archives of Plant Physiology", "Arch Plant Physiol"),
    ("Advances in Urban Geography", "Adv Urban Geogr", "Advances in Urban Planning", "Adv Urban Plann"),
]
SIMILAR = [("Zhang", "Chang"), ("Liu", "Li"), ("Wang", "Wong"), ("Xu", "Hsu")]  # first author, co-author elsewhere


def junk_surname(name: str, n: int) -> str:
    """How deposits garble a surname: given names after a comma, a note, entity text, typographic apostrophes."""
    return [f"{name}, {GIVEN[n % len(GIVEN)]}", f"{name} (*package author and creator*)",
            name.replace(" ", "&nbsp;").replace("'", "\u2019") + ("&nbsp;" if " " not in name else ""),
            f"{name} [corresponding author]"][n % 4]


def generate_hard(seed: int = 11, per_issue: int = 6) -> GeneratedCorpus:
    """Journals with siblings (half deposited, with articles of their own; half never), junk surnames in
    deposits, and in each issue a first author whose near-namesake is another article's co-author."""
    rnd = random.Random(seed)
    out = GeneratedCorpus()
    serial = 0
    for number, (title, abbrev, sibling_title, sibling_abbrev) in enumerate(SIBLINGS):
        journal = Journal(title, abbrev, make_issn(rnd), make_issn(rnd), ("print", "electronic"), number % 2 == 0)
        sibling = Journal(sibling_title, sibling_abbrev, make_issn(rnd), make_issn(rnd), ("print", "electronic"),
                          True, deposited=number % 2 == 0)
        out.journals += [journal, sibling]
        first_year = rnd.randrange(2000, 2020)
        for volume in (1, 2):
            page = 1
            for issue in range(1, 5):
                first, coauthor = SIMILAR[(volume * 4 + issue) % len(SIMILAR)]
                for k in range(per_issue):
                    serial += 1
                    names = [rnd.choice(SURNAMES) for _ in range(rnd.randrange(1, 4))]
                    if k == 0:
                        names = [first] + names[:1]
                    elif k == 1:
                        names = [rnd.choice(SURNAMES), coauthor]
                    deposited_names = [junk_surname(names[0], issue + k)] + names[1:] if k in (2, 3) else None
                    year = first_year + volume - 1
                    out.articles.append(Article(f"{PREFIX}/hard.{serial}", journal, volume, issue, str(page), year,
                                                names, f"Hard article {serial}", True, deposited_names))
                    # The sibling's article in the same place: same numbers, often the same first author.
                    serial += 1
                    sibling_names = names if k % 3 == 0 else [rnd.choice(SURNAMES)]
                    sibling_page = str(page) if not sibling.deposited else str(page + 1)
                    out.articles.append(Article(f"{PREFIX}/hard.{serial}", sibling, volume, issue, sibling_page,
                                                year, sibling_names, f"Sibling article {serial}",
                                                deposited=sibling.deposited))
                    page += rnd.randrange(4, 30)
    return out


def _wrong_check_digit(issn: str) -> str:
    right = issn[-1]
    return issn[:-1] + ("0" if right != "0" else "1")


def _valid_typo(issn: str) -> str:
    """Another valid ISSN one digit away: what a typo that passes the check digit looks like."""
    digits = issn.replace("-", "")[:7]
    changed = digits[:3] + str((int(digits[3]) + 1) % 10) + digits[4:]
    return f"{changed[:4]}-{changed[4:]}{issn_check_char(changed)}"


def hard_queries(corpus: GeneratedCorpus) -> list[LabelledQuery]:
    """Queries of the hard kinds; ``damage`` names the kind (never-deposited ones say so)."""
    queries: list[LabelledQuery] = []

    def add(fields: list[str], expected: str | None, kind: str) -> None:
        key = f"h{len(queries)}"
        queries.append(LabelledQuery("|".join(fields[:8] + [key, ""]), expected, kind))

    by_place = {}
    for a in corpus.articles:
        by_place.setdefault((a.journal.title, a.volume, a.issue), []).append(a)
    for a in corpus.articles:
        j = a.journal
        issn = j.electronic_issn
        v, i, p, y, who = str(a.volume), str(a.issue), a.first_page, str(a.year), a.surnames[0]
        if j.title in {t for t, *_ in SIBLINGS}:  # the deposited journal
            kind = "junk deposited surname" if a.deposited_surnames else "sibling's original"
            add([issn, j.title, who, v, i, p, y, "full_text"], a.doi, kind)
            add([_wrong_check_digit(issn), j.title, who, v, "", p, y, "full_text"], a.doi,
                "ISSN wrong check digit + title")
            add([_wrong_check_digit(issn), "", who, v, i, p, y, "full_text"], a.doi, "ISSN wrong check digit alone")
            add([_valid_typo(issn), "", who, v, i, p, y, "full_text"], a.doi, "valid wrong ISSN, no title")
            issue_mates = by_place[(j.title, a.volume, a.issue)]
            if who in dict(SIMILAR):  # the first author whose near-namesake co-authors another article
                add(["", j.title, who, v, i, "", y, "full_text"], a.doi, "first author with similar co-author")
                add(["", j.abbrev, who, v, i, "", y, "full_text"], a.doi, "first author with similar co-author")
                coauthor = dict(SIMILAR)[who]
                if not any(m.surnames[0] == coauthor for m in issue_mates):
                    add(["", j.title, coauthor, v, i, "", y, "full_text"], None,
                        "never deposited (similar co-author named first)")
        else:  # the sibling: its articles were deposited only when the sibling is
            expected = a.doi if a.deposited else None
            prefix = "" if a.deposited else "never deposited "
            add([issn, j.title, who, v, i, p, y, "full_text"], expected, f"{prefix}(sibling ISSN + title)")
            add(["", j.title, who, v, i, p, y, "full_text"], expected, f"{prefix}(sibling title only)")
            add(["", j.abbrev, who, v, "", p, y, "full_text"], expected, f"{prefix}(sibling abbreviation)")
            if a.deposited:
                add([issn, "", who, v, i, p, y, "full_text"], expected, "(sibling ISSN only)")
    for q in queries:  # the kinds that are about never-deposited articles carry that in their name
        if q.expected is None and not q.damage.startswith("never deposited"):
            q.damage = f"never deposited {q.damage}"
    return queries
