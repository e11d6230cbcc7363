"""The viewer, author and reviewer groups and the permissions each one gets.

Migration 0006 creates the groups. `roles_sync` runs after every `migrate` (and
after the flush of a transactional test) to create them again if they are missing
and to add permissions they lack, so that models added later get their role
permissions too. It never removes a permission an administrator gave a group.
"""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import DEFAULT_DB_ALIAS

# Rows a detection or playbook is made of: authors add, change and delete them.
DETECTION_PARTS = [
    "attackmapping",
    "detectiondatasource",
    "query",
    "detectionbranch",
    "sigmarule",
    "falsepositive",
    "detectiontest",
    "expectedtelemetry",
    "tuningentry",
]
PLAYBOOK_PARTS = [
    "playbookdetection",
    "playbookinput",
    "playbooksigmarule",
    "responsestep",
    "investigationquestion",
    "huntingquery",
    "playbookquery",
]


def role_permissions() -> dict[str, list[tuple[str, str]]]:
    """Return (app label, codename) pairs per group; reviewer has author's and publishing."""
    viewer = [("detections", "view_detection"), ("playbooks", "view_playbook")]
    viewer += [("detections", f"view_{name}") for name in DETECTION_PARTS]
    viewer += [("playbooks", f"view_{name}") for name in PLAYBOOK_PARTS]
    author = viewer + [("detections", "change_detection"), ("playbooks", "change_playbook")]
    for app_label, parts in (("detections", DETECTION_PARTS), ("playbooks", PLAYBOOK_PARTS)):
        for name in parts:
            author += [(app_label, f"{action}_{name}") for action in ("add", "change", "delete")]
    reviewer = author + [
        ("detections", "publish_detection"),
        ("playbooks", "publish_playbook"),
    ]
    return {"viewer": viewer, "author": author, "reviewer": reviewer}


def roles_sync(sender=None, *, using=DEFAULT_DB_ALIAS, apps=global_apps, **kwargs) -> None:
    """Create the role groups if missing and add the permissions they lack.

    Connected to post_migrate. Permissions of both apps are created first, because
    Django creates them per app and the playbooks app may not have run yet.
    """
    for app_label in ("detections", "playbooks"):
        create_permissions(global_apps.get_app_config(app_label), verbosity=0, using=using)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, pairs in role_permissions().items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        wanted = Permission.objects.using(using).none()
        for app_label, codename in pairs:
            wanted |= Permission.objects.using(using).filter(
                content_type__app_label=app_label, codename=codename
            )
        group.permissions.add(*wanted)
