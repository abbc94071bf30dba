"""The national secondary curriculum's subjects, loaded by `subjects_load`."""

# (code, English, Bengali, core) following the national secondary curriculum.
SUBJECTS: list[tuple[str, str, str, bool]] = [
    ("BAN", "Bangla", "বাংলা", True),
    ("ENG", "English", "ইংরেজি", True),
    ("MATH", "Mathematics", "গণিত", True),
    ("SCI", "Science", "বিজ্ঞান", False),
    ("BGS", "Bangladesh and Global Studies", "বাংলাদেশ ও বিশ্বপরিচয়", False),
    ("REL", "Religion and Moral Education", "ধর্ম ও নৈতিক শিক্ষা", False),
    ("ICT", "Information and Communication Technology", "তথ্য ও যোগাযোগ প্রযুক্তি", False),
]
