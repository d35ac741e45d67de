"""Operations tooling: the local stack (`make run`), the smoke run (`make smoke`), seed data."""
