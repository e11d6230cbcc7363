"""Signed-in users of each role, as pytest fixtures, and a factory for more.

conftest.py imports the fixtures. Groups come from migration 0006 of detections, so
these users hold the permissions the portal ships with.
"""

import factory
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

PASSWORD = "persona-password-9f3k"


class UserFactory(factory.django.DjangoModelFactory):
    """A user with a known password and the groups named in `roles`."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda number: f"user{number}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.test")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(*Group.objects.filter(name__in=extracted))
        if create:
            self.save()


@pytest.fixture
def viewer(db):
    """A user in the viewer group: reads every status, edits nothing."""
    return UserFactory(username="viewer", roles=["viewer"])


@pytest.fixture
def author(db):
    """A user in the author group: edits content and submits it for review."""
    return UserFactory(username="author", roles=["author"])


@pytest.fixture
def reviewer(db):
    """A user in the reviewer group: also publishes and deprecates."""
    return UserFactory(username="reviewer", roles=["reviewer"])


@pytest.fixture
def outsider(db):
    """A signed-in user in no group, who can read published content only."""
    return UserFactory(username="outsider")


@pytest.fixture
def admin_user(db):
    """A superuser, who has every permission."""
    return UserFactory(username="admin", is_staff=True, is_superuser=True)
