import datetime as dt

import factory

from apps.accounts.models import Role, User
from apps.students.models import (
    AttendanceRecord,
    Enrollment,
    GradeRecord,
    Region,
    RegionLevel,
    School,
    SchoolType,
    StaffScope,
    Student,
    Subject,
)


class RegionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Region

    level = RegionLevel.DIVISION
    code = factory.Sequence(lambda n: f"R{n}")
    name = factory.Sequence(lambda n: f"Region {n}")
    parent = None
    path = factory.LazyAttribute(lambda r: f"{r.parent.path if r.parent else '/'}{r.code}/")


class SchoolFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = School

    eiin = factory.Sequence(lambda n: f"{100000 + n}")
    name = factory.Sequence(lambda n: f"School {n}")
    school_type = SchoolType.GOVERNMENT
    region = factory.SubFactory(RegionFactory)


class StudentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Student

    student_id = factory.Sequence(lambda n: f"S-{n:06d}")
    name = factory.Sequence(lambda n: f"Student {n}")
    gender = "female"


class EnrollmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Enrollment

    student = factory.SubFactory(StudentFactory)
    school = factory.SubFactory(SchoolFactory)
    academic_year = 2026
    grade_level = 7
    entry_date = dt.date(2026, 1, 4)


class SubjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subject
        django_get_or_create = ("code",)

    code = "MATH"
    name = "Mathematics"
    is_core = True


class AttendanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AttendanceRecord

    student = factory.SubFactory(StudentFactory)
    school = factory.SubFactory(SchoolFactory)
    date = dt.date(2026, 3, 1)
    status = "present"


class GradeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GradeRecord

    student = factory.SubFactory(StudentFactory)
    subject = factory.SubFactory(SubjectFactory)
    academic_year = 2026
    term = "Term 1"
    assessment = "Half-yearly exam"
    assessment_date = dt.date(2026, 6, 16)
    score = 55
    max_score = 100


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    role = Role.COUNSELOR
    password = factory.PostGenerationMethodCall("set_password", "pw")


class StaffScopeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StaffScope

    user = factory.SubFactory(UserFactory)
