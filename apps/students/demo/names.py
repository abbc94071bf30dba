"""Name and calendar tables for the synthetic district (Latin, Bengali)."""

import datetime as dt

FEMALE_FIRST = [
    ("Ayesha", "আয়েশা"),
    ("Fatema", "ফাতেমা"),
    ("Nusrat", "নুসরাত"),
    ("Sadia", "সাদিয়া"),
    ("Tania", "তানিয়া"),
    ("Sumaiya", "সুমাইয়া"),
    ("Jannatul", "জান্নাতুল"),
    ("Mim", "মীম"),
    ("Rima", "রিমা"),
    ("Shirin", "শিরিন"),
    ("Lima", "লিমা"),
    ("Popy", "পপি"),
    ("Nasrin", "নাসরিন"),
    ("Farzana", "ফারজানা"),
    ("Sharmin", "শারমিন"),
    ("Mousumi", "মৌসুমী"),
    ("Rupa", "রূপা"),
    ("Priya", "প্রিয়া"),
    ("Tumpa", "টুম্পা"),
    ("Anika", "আনিকা"),
    ("Sanjida", "সানজিদা"),
    ("Habiba", "হাবিবা"),
    ("Khadija", "খাদিজা"),
    ("Marium", "মরিয়ম"),
    ("Rokeya", "রোকেয়া"),
    ("Shapla", "শাপলা"),
    ("Bithi", "বীথি"),
    ("Ritu", "ঋতু"),
]
MALE_FIRST = [
    ("Rahim", "রহিম"),
    ("Karim", "করিম"),
    ("Hasan", "হাসান"),
    ("Rakib", "রাকিব"),
    ("Sakib", "সাকিব"),
    ("Tanvir", "তানভীর"),
    ("Imran", "ইমরান"),
    ("Arif", "আরিফ"),
    ("Shahin", "শাহীন"),
    ("Jahid", "জাহিদ"),
    ("Rubel", "রুবেল"),
    ("Sohel", "সোহেল"),
    ("Mahmud", "মাহমুদ"),
    ("Nayeem", "নাঈম"),
    ("Fahim", "ফাহিম"),
    ("Rasel", "রাসেল"),
    ("Shuvo", "শুভ"),
    ("Tapan", "তপন"),
    ("Bijoy", "বিজয়"),
    ("Anik", "অনিক"),
    ("Mizan", "মিজান"),
    ("Jewel", "জুয়েল"),
    ("Emon", "ইমন"),
    ("Sabbir", "সাব্বির"),
    ("Masud", "মাসুদ"),
    ("Liton", "লিটন"),
    ("Polash", "পলাশ"),
    ("Ripon", "রিপন"),
]
MUSLIM_FEMALE_LAST = [
    ("Akter", "আক্তার"),
    ("Khatun", "খাতুন"),
    ("Begum", "বেগম"),
    ("Islam", "ইসলাম"),
    ("Rahman", "রহমান"),
]
MUSLIM_MALE_LAST = [
    ("Hossain", "হোসেন"),
    ("Rahman", "রহমান"),
    ("Islam", "ইসলাম"),
    ("Uddin", "উদ্দিন"),
    ("Mia", "মিয়া"),
    ("Ahmed", "আহমেদ"),
    ("Sarkar", "সরকার"),
    ("Chowdhury", "চৌধুরী"),
]
HINDU_LAST = [("Das", "দাস"), ("Roy", "রায়"), ("Barman", "বর্মন"), ("Saha", "সাহা"), ("Pal", "পাল")]

GUARDIAN_FIRST = [
    ("Abdul", "আব্দুল"),
    ("Mohammad", "মোহাম্মদ"),
    ("Nurul", "নুরুল"),
    ("Abul", "আবুল"),
    ("Shamsul", "শামসুল"),
    ("Anwar", "আনোয়ার"),
    ("Gopal", "গোপাল"),
    ("Haripada", "হরিপদ"),
]

SCHOOL_KINDS = [
    ("government", "{place} Government High School", "{place_bn} সরকারি উচ্চ বিদ্যালয়"),
    ("non_government", "{place} High School", "{place_bn} উচ্চ বিদ্যালয়"),
    ("non_government", "{place} Girls' High School", "{place_bn} বালিকা উচ্চ বিদ্যালয়"),
    ("madrasah", "{place} Dakhil Madrasah", "{place_bn} দাখিল মাদ্রাসা"),
    ("non_government", "{place} Model School", "{place_bn} মডেল স্কুল"),
]

# (term, assessment, month, day, max score)
ASSESSMENTS = [
    ("Term 1", "Class test", 3, 12, 20),
    ("Term 1", "Half-yearly exam", 6, 16, 100),
    ("Term 2", "Class test", 9, 10, 20),
    ("Term 2", "Annual exam", 11, 24, 100),
]

FIXED_HOLIDAYS = [
    (2, 21, "Shaheed Day and International Mother Language Day", "শহীদ দিবস ও আন্তর্জাতিক মাতৃভাষা দিবস"),
    (3, 26, "Independence Day", "স্বাধীনতা দিবস"),
    (4, 14, "Bengali New Year", "পহেলা বৈশাখ"),
    (5, 1, "May Day", "মে দিবস"),
    (12, 16, "Victory Day", "বিজয় দিবস"),
]

# Approximate first days of Eid-ul-Fitr and Eid-ul-Adha in Bangladesh; the
# lunar calendar moves them ~11 days earlier each year.
EID_DATES = {
    2022: (dt.date(2022, 5, 3), dt.date(2022, 7, 10)),
    2023: (dt.date(2023, 4, 22), dt.date(2023, 6, 29)),
    2024: (dt.date(2024, 4, 11), dt.date(2024, 6, 17)),
    2025: (dt.date(2025, 3, 31), dt.date(2025, 6, 7)),
    2026: (dt.date(2026, 3, 21), dt.date(2026, 5, 27)),
    2027: (dt.date(2027, 3, 10), dt.date(2027, 5, 17)),
}


def eid_dates(year: int) -> tuple[dt.date, dt.date]:
    if year in EID_DATES:
        return EID_DATES[year]
    fitr, adha = EID_DATES[2026]
    shift = dt.timedelta(days=round(-10.9 * (year - 2026)))
    return (fitr + shift).replace(year=year), (adha + shift).replace(year=year)


def holidays_for_year(year: int) -> list[tuple[dt.date, str, str]]:
    days: list[tuple[dt.date, str, str]] = [
        (dt.date(year, month, day), name, name_bn) for month, day, name, name_bn in FIXED_HOLIDAYS
    ]
    fitr, adha = eid_dates(year)
    for offset in range(-5, 8):
        days.append((fitr + dt.timedelta(days=offset), "Eid-ul-Fitr vacation", "ঈদুল ফিতরের ছুটি"))
    for offset in range(-2, 6):
        days.append((adha + dt.timedelta(days=offset), "Eid-ul-Adha vacation", "ঈদুল আজহার ছুটি"))
    winter = dt.date(year, 12, 20)
    while winter.year == year:
        days.append((winter, "Winter vacation", "শীতকালীন ছুটি"))
        winter += dt.timedelta(days=1)
    unique: dict[dt.date, tuple[dt.date, str, str]] = {}
    for holiday in days:
        if holiday[0].year == year:
            unique.setdefault(holiday[0], holiday)
    return sorted(unique.values())
