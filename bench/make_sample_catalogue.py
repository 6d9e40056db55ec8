"""Write a made-up program catalogue as CSV: the shipped sample, or a large one for benchmarks.

    python bench/make_sample_catalogue.py                      # texts/catalogue/stavropol.csv
    python bench/make_sample_catalogue.py --count 20000 -o /tmp/big.csv

Every program, organisation and address is invented for the demo: the file starts
with a comment saying so, and every row carries sample=yes, which the bot shows
on the program's card. The output is deterministic (a fixed random seed).
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.catalogue_io import COLUMNS  # noqa: E402
from texts import load_region  # noqa: E402

TITLES = {
    "technical": [
        ("Робототехника для начинающих", 7, 11),
        ("Лего-конструирование", 5, 8),
        ("Программирование на Python", 12, 17),
        ("3D-моделирование и печать", 11, 17),
        ("Авиамоделирование", 10, 16),
        ("Юный радиоэлектроник", 10, 15),
        ("Основы компьютерной грамотности", 8, 12),
    ],
    "science": [
        ("Юный эколог", 7, 12),
        ("Занимательная химия", 11, 15),
        ("Астрономия для школьников", 10, 16),
        ("Экспериментариум", 6, 10),
        ("Юные натуралисты", 7, 11),
        ("Биология с микроскопом", 12, 17),
    ],
    "sports": [
        ("Футбол", 6, 14),
        ("Самбо", 7, 17),
        ("Шахматы", 5, 17),
        ("Плавание", 6, 15),
        ("Настольный теннис", 8, 17),
        ("Волейбол", 10, 17),
        ("Общая физическая подготовка", 5, 10),
    ],
    "arts": [
        ("Изостудия «Палитра»", 5, 12),
        ("Хореографический ансамбль", 6, 16),
        ("Вокальная студия", 7, 17),
        ("Театральная мастерская", 8, 15),
        ("Гончарная мастерская", 7, 14),
        ("Гитара для начинающих", 10, 17),
        ("Декоративно-прикладное творчество", 6, 12),
    ],
    "tourism": [
        ("Юный турист", 9, 15),
        ("Краеведение: история родного края", 10, 16),
        ("Спортивное ориентирование", 9, 17),
        ("Школьный музей", 11, 17),
        ("Пешеходный туризм", 12, 17),
    ],
    "social": [
        ("Школа юного журналиста", 11, 17),
        ("Английский язык в игре", 5, 9),
        ("Волонтёрский отряд", 12, 17),
        ("Школа вожатых", 14, 17),
        ("Финансовая грамотность", 10, 15),
        ("Подготовка к школе «Почемучка»", 5, 7),
        ("Медиастудия", 12, 17),
    ],
}

GENERAL = [
    "Центр детского творчества «Радуга» (пример)",
    "Дом детского творчества «Созвездие» (пример)",
    "Центр дополнительного образования «Горизонт» (пример)",
    "Школа № 7, объединения дополнительного образования (пример)",
]
ORGANISATIONS = {
    "technical": [*GENERAL, "Станция юных техников «Импульс» (пример)"],
    "science": [*GENERAL, "Эколого-биологический центр «Росток» (пример)"],
    "sports": [*GENERAL, "Детско-юношеская спортивная школа «Олимп» (пример)"],
    "arts": [*GENERAL, "Детская школа искусств «Камертон» (пример)"],
    "tourism": [*GENERAL, "Станция юных туристов «Тропа» (пример)"],
    "social": GENERAL,
}

STREETS = ["ул. Ленина", "ул. Мира", "ул. Советская", "ул. Школьная", "пр-т Победы", "ул. Садовая"]
DAYS = ["пн и ср", "вт и чт", "ср и пт", "пн, ср, пт", "сб", "вт и сб"]
TIMES = ["15:00", "15:30", "16:00", "16:30", "17:00", "18:00"]


def slug(index: int) -> str:
    return f"sample-{index}"


def generate(count: int, seed: int = 26) -> list[dict[str, str]]:
    region = load_region("stavropol")
    rnd = random.Random(seed)
    directions = list(TITLES)
    municipalities = list(region.municipalities)
    rows = []
    for index in range(count):
        # Every municipality gets one program of each direction per round.
        municipality = municipalities[index % len(municipalities)]
        direction = directions[(index // len(municipalities)) % len(directions)]
        title, age_from, age_to = rnd.choice(TITLES[direction])
        funding = rnd.choice(["free", "certificate", "pf", "pf"])
        price = str(rnd.choice([1200, 1500, 1800, 2000, 2400, 3000])) if funding == "pf" else ""
        navigator_id = str(900000 + index)
        place = municipality.aliases[0] if municipality.aliases else municipality.name
        rows.append(
            {
                "navigator_id": navigator_id,
                "title": title,
                "organisation": rnd.choice(ORGANISATIONS[direction]),
                "municipality": municipality.id,
                "address": f"{place}, {rnd.choice(STREETS)}, {rnd.randint(1, 120)}",
                "direction": direction,
                "age_from": str(age_from),
                "age_to": str(age_to),
                "funding": funding,
                "price": price,
                "schedule": f"{rnd.choice(DAYS)}, {rnd.choice(TIMES)}",
                "places_left": str(rnd.choice([0, 2, 5, 8, 10, 12, 15])),
                "url": f"{region.navigator_url}program/{navigator_id}-{slug(index)}",
                "sample": "yes",
            }
        )
    return rows


def write(rows: list[dict[str, str]], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        file.write(
            "# Sample catalogue for the demo: every program, organisation and address here "
            "is made up. Not real data.\n"
        )
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=198)
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "texts/catalogue/stavropol.csv")
    args = parser.parse_args()
    write(generate(args.count), args.output)
    print(f"{args.count} programs written to {args.output}")


if __name__ == "__main__":
    main()
