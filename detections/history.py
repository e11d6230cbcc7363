"""History pages of detections and playbooks: versions, diffs, restore and workflow posts.

The pages list what `editing.history` returns, newest first, with the workflow
transitions recorded at each revision. Any two versions can be compared side by
side or as a unified diff. Restoring stores an older version as a new revision.
History shows unpublished text and comments, so only users who may see unpublished
content reach it; restoring needs the edit permission.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from django.contrib import messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from reversion.models import Version

from . import editing, permissions
from .forms import MAX_COMMENT_LENGTH
from .models import StatusTransition

HISTORY_PAGE_SIZE = 50
DIFF_VIEWS = ("side", "unified")


@dataclass
class SideBySideRow:
    """One line pair of a side-by-side diff; `kind` is equal, replace, delete or insert."""

    kind: str
    before: str
    after: str


@dataclass
class DiffItem:
    """One changed field of a diff, ready for the template."""

    field: str
    before: object
    after: object
    unified: str
    rows: list[SideBySideRow] = field(default_factory=list)

    @property
    def is_text(self) -> bool:
        return isinstance(self.before, str | None) and isinstance(self.after, str | None)


def history_required(request: HttpRequest, obj) -> None:
    """Raise PermissionDenied unless the user may see unpublished content of `obj`'s kind."""
    if not permissions.can_view_unpublished(request.user, type(obj)):
        raise PermissionDenied("The history shows unpublished text; your account cannot see it.")


def side_by_side(before: str, after: str) -> list[SideBySideRow]:
    """Pair the lines of two texts for a two-column diff."""
    old_lines = before.splitlines()
    new_lines = after.splitlines()
    rows = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, old_start, old_end, new_start, new_end in matcher.get_opcodes():
        old_chunk = old_lines[old_start:old_end]
        new_chunk = new_lines[new_start:new_end]
        for index in range(max(len(old_chunk), len(new_chunk))):
            rows.append(
                SideBySideRow(
                    kind=tag,
                    before=old_chunk[index] if index < len(old_chunk) else "",
                    after=new_chunk[index] if index < len(new_chunk) else "",
                )
            )
    return rows


def diff_items(obj, version_a: int, version_b: int) -> list[DiffItem]:
    """Return the changes from version `version_a` to `version_b`; Http404 for unknown ids."""
    try:
        changes = editing.diff(obj, version_a, version_b)
    except Version.DoesNotExist as exc:
        raise Http404(f"Version {version_a} or {version_b} is not a version of this page.") from exc
    items = []
    for change in changes:
        item = DiffItem(change.field, change.before, change.after, change.diff)
        if item.is_text:
            item.rows = side_by_side(change.before or "", change.after or "")
            if not item.unified:
                item.unified = "".join(
                    difflib.unified_diff(
                        (change.before or "").splitlines(keepends=True),
                        (change.after or "").splitlines(keepends=True),
                        fromfile=f"{change.field} (before)",
                        tofile=f"{change.field} (after)",
                    )
                )
        items.append(item)
    return items


def _transitions_by_revision(obj) -> dict[int, list[StatusTransition]]:
    content_type = ContentType.objects.get_for_model(type(obj))
    transitions: dict[int, list[StatusTransition]] = {}
    rows = StatusTransition.objects.filter(content_type=content_type, object_id=obj.pk)
    for row in rows.select_related("user"):
        transitions.setdefault(row.revision, []).append(row)
    return transitions


def _version_id(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _selected_versions(request: HttpRequest, entries: list) -> tuple[int | None, int | None, bool]:
    """Return the two version ids to compare, older first, and whether the user chose them.

    Without a choice the two newest versions are preselected in the form.
    """
    version_a = _version_id(request.GET.get("a"))
    version_b = _version_id(request.GET.get("b"))
    if version_a and version_b:
        # Version ids grow with time, so the smaller id is the older version.
        older, newer = sorted((version_a, version_b))
        return older, newer, True
    if not entries:
        return None, None, False
    newest = entries[0].version_id
    previous = entries[1].version_id if len(entries) > 1 else newest
    return previous, newest, False


def history_page(
    request: HttpRequest, obj, *, template: str, context: dict, history_url: str
) -> HttpResponse:
    """Show the versions of `obj` and, with `a` and `b` in the query, the diff between them."""
    history_required(request, obj)
    entries = editing.history(obj)
    transitions = _transitions_by_revision(obj)
    rows = [(entry, transitions.get(entry.revision, [])) for entry in entries]
    page = Paginator(rows, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))

    version_a, version_b, chosen = _selected_versions(request, entries)
    diff = diff_items(obj, version_a, version_b) if chosen else None
    diff_view = request.GET.get("view") if request.GET.get("view") in DIFF_VIEWS else "side"
    by_id = {entry.version_id: entry for entry in entries}
    return render(
        request,
        template,
        {
            **context,
            "object": obj,
            "page_obj": page,
            "diff": diff,
            "diff_view": diff_view,
            "version_a": by_id.get(version_a),
            "version_b": by_id.get(version_b),
            "selected_a": version_a,
            "selected_b": version_b,
            "can_restore": permissions.can_edit(request.user, type(obj)),
            "current_revision": obj.revision,
            "history_url": history_url,
        },
    )


def restore_page(
    request: HttpRequest,
    obj,
    version_id: int,
    *,
    template: str,
    context: dict,
    history_url: str,
) -> HttpResponse:
    """Ask for confirmation (GET) or restore version `version_id` of `obj` (POST)."""
    if not permissions.can_edit(request.user, type(obj)):
        raise PermissionDenied("Your account may read content but not restore versions.")
    entries = editing.history(obj)
    entry = next((item for item in entries if item.version_id == version_id), None)
    if entry is None:
        raise Http404(f"Version {version_id} is not a version of this page.")
    if request.method == "POST":
        return _restore_post(request, obj, entry, history_url)
    changes = diff_items(obj, entries[0].version_id, version_id) if entries else []
    return render(
        request,
        template,
        {
            **context,
            "object": obj,
            "entry": entry,
            "changes": changes,
            "history_url": history_url,
            "max_comment_length": MAX_COMMENT_LENGTH,
        },
    )


def _restore_post(request, obj, entry, history_url) -> HttpResponse:
    comment = request.POST.get("comment", "").strip()[:MAX_COMMENT_LENGTH]
    try:
        expected = int(request.POST.get("revision", ""))
    except ValueError:
        messages.error(request, "The form lacked the revision number; reload the page.")
        return redirect(history_url)
    try:
        restored = editing.restore(
            obj,
            user=request.user,
            version_id=entry.version_id,
            expected_revision=expected,
            comment=comment or f"Restored revision {entry.revision}",
        )
    except editing.EditConflict as conflict:
        messages.error(
            request,
            f"Nothing was restored: someone saved revision {conflict.current_revision} since "
            f"you opened the page. Review the history and restore again if needed.",
        )
        return redirect(history_url)
    except editing.RestoreError as exc:
        messages.error(request, f"Nothing was restored: {exc}")
        return redirect(history_url)
    messages.success(
        request,
        f"Restored revision {entry.revision} as revision {restored.revision}.",
    )
    return redirect(history_url)
