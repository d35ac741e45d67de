"""Sign-up bodies for benchmarks: complete, and each a different person (BrokerFlow refuses the
same name and date of birth twice)."""

from __future__ import annotations

import random
import string
import uuid
from typing import Any


def random_surname() -> str:
    return "".join(random.choices(string.ascii_lowercase, k=10)).title()


def random_birth_date() -> str:
    return f"19{random.randint(50, 99)}-0{random.randint(1, 9)}-{random.randint(10, 28)}"


def bench_applicant(password: str, full_name: str | None = None) -> dict[str, Any]:
    surname = random_surname()
    return {
        "email": f"bench-{uuid.uuid4().hex[:12]}@example.com",
        "password": password,
        "full_name": full_name or f"Bench {surname}",
        "country": "DE",
        "nationality": "DE",
        "date_of_birth": random_birth_date(),
        "phone": "+4915123456789",
        "address": {"line1": "Heidestrasse 17", "city": "Koeln", "postal_code": "51147"},
    }
