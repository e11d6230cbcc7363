"""Converting Sigma rules for the render targets defined in settings.RENDER_TARGETS."""

import copy
import importlib
import json
import pickle
import time
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from typing import Any

import yaml
from django.conf import settings
from sigma.collection import SigmaCollection
from sigma.conversion.base import Backend
from sigma.exceptions import SigmaError
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule

from detections.content.yamlio import load_yaml

from .attack_data import use_shipped_attack_data
from .fidelity import LINE_BREAKS, FidelityWarning, fidelity_warnings
from .speedups import left_out_take, speedups_apply


class TargetUnavailable(Exception):
    """A render target whose backend or pipeline package is missing or fails to import."""


@dataclass(frozen=True)
class RenderTarget:
    """One entry of settings.RENDER_TARGETS."""

    key: str
    label: str
    backend: str
    pipelines: tuple[str, ...]
    output_format: str
    packages: tuple[str, ...]
    extension: str
    lexer: str
    cli: tuple[str, tuple[str, ...]] | None

    @property
    def pipeline_names(self) -> list[str]:
        return [spec.rsplit(":", 1)[-1] for spec in self.pipelines]


@dataclass
class Conversion:
    """The outcome of converting one rule for one target."""

    query: str = ""
    error: str = ""
    warnings: list[FidelityWarning] = field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def succeeded(self) -> bool:
        return not self.error


def render_targets() -> dict[str, RenderTarget]:
    """Return the configured render targets by key, in settings order."""
    targets = {}
    for key, entry in settings.RENDER_TARGETS.items():
        cli = entry.get("cli")
        targets[key] = RenderTarget(
            key=key,
            label=entry["label"],
            backend=entry["backend"],
            pipelines=tuple(entry.get("pipelines") or ()),
            output_format=entry.get("format") or "default",
            packages=tuple(entry.get("packages") or ()),
            extension=entry.get("extension") or "txt",
            lexer=entry.get("lexer") or "text",
            cli=(cli[0], tuple(cli[1])) if cli else None,
        )
    return targets


@cache
def target_versions(target: RenderTarget) -> dict[str, str]:
    """Return the installed versions of pySigma and the target's packages.

    Raises TargetUnavailable naming the first package that is not installed.
    """
    versions = {"pySigma": metadata.version("pySigma")}
    for package in target.packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError as exc:
            raise TargetUnavailable(
                f"package {package} is not installed; install it to render {target.label}"
            ) from exc
    return versions


class TargetConverter:
    """A backend with its pipelines built once, reused for every rule of a process.

    pySigma resets a processing pipeline's state at the start of each rule, but
    pipelines change the rules they process, so every rule is deep-copied. Some
    failure transformations also rewrite their own `message` when they raise: the
    kusto pipelines (pySigma-backend-kusto 1.0.1) and the SentinelOne PowerQuery
    backend's built-in pipeline prepend the field name each time, so one rule's
    error would grow into the next rule's. A converter puts every such message
    back before each rule, so a rule's query never depends on the rules before it.
    """

    def __init__(self, target: RenderTarget):
        self.target = target
        self.versions = target_versions(target)
        backend_class = _import(target.backend, target)
        pipeline = _merged_pipeline([_pipeline_build(spec, target) for spec in target.pipelines])
        use_shipped_attack_data()
        try:
            self.backend = backend_class(processing_pipeline=pipeline)
            speedups_apply(self.backend)
            # The built-in pipeline is shared by every instance of the backend
            # class, so each converter gets its own copy.
            shared = getattr(backend_class, "backend_processing_pipeline", None)
            if shared is not None and shared.items:
                self.backend.backend_processing_pipeline = copy.deepcopy(shared)
            combined = self._combined_pipeline_keep()
            self._messages = _transformation_messages(
                self.backend.processing_pipeline,
                getattr(self.backend, "backend_processing_pipeline", None),
                combined,
            )
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break other targets
            raise TargetUnavailable(
                f"{target.backend} cannot be set up for {target.label}: {type(exc).__name__}: {exc}"
            ) from exc

    def _combined_pipeline_keep(self) -> ProcessingPipeline | None:
        """Build the backend's combined pipeline once and make the backend reuse it.

        pySigma's `Backend.convert` joins the built-in, the target's and the output
        format's pipelines on every call and rebinds every item to the result. That
        cost 0.11 ms per render over every eighth SigmaHQ rule (6.41 s against 5.78 s
        of CPU for 5,502 renders). sigma-cli converts a whole rule folder with one
        such pipeline, and `ProcessingPipeline.apply` resets its state at the start
        of each rule, so reusing it keeps the output. The pipeline is deep-copied so
        that items of an output format pipeline, a class attribute that other
        converters of the same backend class share, stay bound to this converter's
        copy. Returns the
        copy, or None for a backend that is not a pySigma Backend or when the copy
        cannot be made, and then every call builds its own.
        """
        backend = self.backend
        if not isinstance(backend, Backend):
            return None
        built_format = self.target.output_format or backend.default_format
        try:
            backend.init_processing_pipeline(built_format)
            combined = copy.deepcopy(backend.last_processing_pipeline)
        except Exception:  # noqa: BLE001 - fall back to pySigma's own per-call pipeline
            return None

        def init_processing_pipeline(output_format: str | None = None) -> None:
            if (output_format or backend.default_format) == built_format:
                backend.last_processing_pipeline = combined
            else:
                type(backend).init_processing_pipeline(backend, output_format)

        backend.init_processing_pipeline = init_processing_pipeline
        return combined

    def convert(
        self, rule: "LoadedRule", *, propagate: tuple[type[BaseException], ...] = ()
    ) -> Conversion:
        """Convert one rule; any exception from pySigma or the backend becomes `error`.

        Exceptions of the `propagate` types are raised instead, so a worker's soft time
        limit (an Exception subclass raised wherever the backend happens to be) still
        reaches the caller.
        """
        started = time.perf_counter()
        conversion = Conversion()
        sanitized: list[FidelityWarning] = []
        left_out: list[str] = []
        try:
            for transformation, message in self._messages:
                transformation.message = message
            converted_rule = rule.copy()
            if self.target.output_format == "savedsearches":
                sanitized = savedsearches_metadata_sanitize(converted_rule)
            collection = SigmaCollection([converted_rule])
            # Forget what a conversion that raised may have recorded.
            left_out_take(self.backend)
            result = self.backend.convert(collection, self.target.output_format)
            left_out = left_out_take(self.backend)
            conversion.query = format_output(result)
            if not conversion.query.strip():
                conversion.error = "The backend produced no query for this rule."
        except propagate:
            raise
        except RecursionError:
            conversion.error = "The rule is nested too deeply for the backend (recursion limit)."
        except Exception as exc:  # noqa: BLE001 - backends raise any type; each becomes a message
            conversion.error = describe_error(exc)
        conversion.duration_ms = (time.perf_counter() - started) * 1000
        if conversion.succeeded:
            conversion.warnings = sanitized + fidelity_warnings(
                rule.rule, self.target.key, conversion.query, left_out=left_out
            )
        return conversion


def _transformation_messages(*pipelines) -> list[tuple[object, str]]:
    """Return each transformation of the pipelines that has a text `message`, with it."""
    found = []
    for pipeline in pipelines:
        for item in getattr(pipeline, "items", None) or []:
            transformation = getattr(item, "transformation", None)
            message = getattr(transformation, "message", None)
            if isinstance(message, str):
                found.append((transformation, message))
    return found


def savedsearches_metadata_sanitize(rule: SigmaRule) -> list[FidelityWarning]:
    """Neutralise rule metadata that would break a savedsearches.conf stanza, in place.

    pysigma-backend-splunk 2.1.0 writes the title into the `[stanza]` line with only [ and ]
    removed, and continues the description and the search (with the rule's `fields`) across
    "\n" by ending each line with a backslash. A line break in the title or a line break
    other than "\n" elsewhere would end a line early. A backslash at the end of the
    description or of the last field would join the next line. Either way, text from the
    rule could be read as a new key or stanza. Returns a `metadata_sanitized` warning naming
    what was changed, or an empty list when nothing was.
    """
    changes = []
    title = " ".join(rule.title.splitlines())
    if title != rule.title:
        rule.title = title
        changes.append("line breaks in the title were replaced with spaces")
    if rule.description:
        description = rule.description.strip()
        lines = "\n".join(description.splitlines())
        if lines != description:
            changes.append("line breaks other than \\n in the description were replaced with \\n")
        trimmed = lines
        while trimmed.endswith("\\"):
            trimmed = trimmed.rstrip("\\").rstrip()
        if trimmed != lines:
            changes.append("the backslash at the end of the description was removed")
        if trimmed != description:
            rule.description = trimmed
    if rule.fields:
        fields = ["".join(" " if char in LINE_BREAKS else char for char in f) for f in rule.fields]
        if fields != rule.fields:
            changes.append("line breaks other than \\n in the fields were replaced with spaces")
        if fields[-1].endswith("\\"):
            fields[-1] = fields[-1].rstrip("\\")
            changes.append("the backslash at the end of the last field was removed")
        rule.fields = fields
    if not changes:
        return []
    message = (
        f"To keep the savedsearches.conf stanza intact, {'; '.join(changes)}. The output "
        "differs from sigma-cli's in these places only."
    )
    return [FidelityWarning(code="metadata_sanitized", message=message)]


@dataclass
class LoadedRule:
    """A parsed Sigma rule kept unchanged; converters work on deep copies of it."""

    rule: SigmaRule
    _pickled: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def copy(self) -> SigmaRule:
        """Return a deep copy of the rule, made by unpickling a pickle taken once.

        Over SigmaHQ's 3,141 rules, pickle.loads took 0.11 ms per rule against 0.38 ms
        for copy.deepcopy (Python 3.11, pySigma 1.5.1), and a rule is copied once per
        target. pySigma's classes define no copy or pickle hooks, so both make the
        same object graph. A rule that cannot be pickled is deep-copied instead.
        """
        if self._pickled is None:
            try:
                self._pickled = pickle.dumps(self.rule, pickle.HIGHEST_PROTOCOL)
            except (pickle.PicklingError, TypeError, AttributeError):
                self._pickled = b""
        if not self._pickled:
            return copy.deepcopy(self.rule)
        return pickle.loads(self._pickled)


def load_rule(text: str, filters: list[dict] | None = None) -> LoadedRule:
    """Parse a rule for rendering and apply the Sigma `filters` (tuning entries) to it.

    Raises ValueError (SigmaRuleError for a filter) with the reason if the rule or a
    filter cannot be parsed.
    """
    try:
        document = load_yaml(text)
        rule = SigmaRule.from_dict(document)
    except (yaml.YAMLError, SigmaError, TypeError, AttributeError) as exc:
        raise ValueError(f"the rule cannot be parsed: {exc}") from exc
    if filters:
        from .tuning import apply_filters

        rule = apply_filters(rule, filters)
    return LoadedRule(rule)


def format_output(result: Any) -> str:
    """Join a backend's output the way sigma-cli prints it."""
    if isinstance(result, str):
        return result
    if isinstance(result, bytes):
        return result.decode("utf-8", errors="replace")
    if isinstance(result, dict):
        return json.dumps(result)
    if isinstance(result, list) and all(isinstance(item, str) for item in result):
        return "\n\n".join(result)
    if isinstance(result, list) and all(isinstance(item, dict) for item in result):
        return "\n".join(json.dumps(item) for item in result)
    raise TypeError(f"the backend returned an unexpected output type {type(result).__name__}")


def describe_error(exc: BaseException) -> str:
    """Turn a conversion exception into a sentence a detection engineer can act on."""
    name = type(exc).__name__
    text = str(exc).strip() or "no details given"
    if isinstance(exc, NotImplementedError):
        return f"The backend does not support a feature this rule uses: {text}"
    if isinstance(exc, SigmaError):
        return f"pySigma rejected the rule for this target ({name}): {text}"
    return f"The backend failed with {name}: {text}"


def _import(spec: str, target: RenderTarget):
    module_name, _, attribute = spec.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except Exception as exc:  # noqa: BLE001 - a broken plugin must not break other targets
        raise TargetUnavailable(f"{spec} cannot be imported for {target.label}: {exc}") from exc


def _pipeline_build(spec: str, target: RenderTarget) -> ProcessingPipeline:
    pipeline_function = _import(spec, target)
    try:
        return pipeline_function()
    except Exception as exc:  # noqa: BLE001 - a broken plugin must not break other targets
        raise TargetUnavailable(
            f"{spec} failed to build its pipeline for {target.label}: {type(exc).__name__}: {exc}"
        ) from exc


def _merged_pipeline(pipelines: list[ProcessingPipeline]) -> ProcessingPipeline | None:
    """Merge pipelines in priority order, lowest first, as sigma-cli's resolver does."""
    merged = None
    for pipeline in sorted(pipelines, key=lambda item: item.priority):
        merged = pipeline if merged is None else merged + pipeline
    return merged
