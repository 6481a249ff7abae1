"""Forms: every choice comes from an engine registry, and the search form builds the engine's
own SearchConfig in clean(), so the engine's messages are the form's messages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import AbstractBaseUser

from engine.config import (
    COST_OBJECTIVES,
    DEFAULT_RESOLUTION,
    QUALITY_OBJECTIVES,
    ConfigError,
    Constraints,
    SearchConfig,
    TrainBudget,
    format_count,
    parse_count,
)
from engine.data.enhancement import TASKS, make_task
from engine.search.space_bounds import space_bounds
from engine.search.strategies import STRATEGIES
from webapp.studio.models import Clip

_DEFAULTS = SearchConfig(clip="x")
# Friendlier labels where the engine's carry a default setting ("sigma 25"); others as-is.
_TASK_LABELS = {"denoise": "Denoise (Gaussian noise)", "deblock": "Deblock (JPEG artifacts)"}
_QUALITY_LABELS = {"psnr": "PSNR (dB, Y channel)", "ssim": "SSIM (Y channel)"}
_COST_LABELS = {"macs": "MACs per output frame", "params": "Parameters",
                "latency": "Measured latency"}
_STRATEGY_LABELS = {"nsga2": "NSGA-II (evolutionary)", "tpe": "TPE (Bayesian)",
                    "random": "Random sampling"}


def task_choices() -> list[tuple[str, str]]:
    return [(name, _TASK_LABELS.get(name) or make_task(name).label) for name in TASKS.keys()]


def _choices(names: Any, labels: dict[str, str]) -> list[tuple[str, str]]:
    return [(name, labels.get(name, name)) for name in names]


class UploadForm(forms.Form):
    file = forms.FileField(
        label="Video clip",
        help_text="A short, representative sample of your footage (any format FFmpeg decodes).",
        widget=forms.ClearableFileInput(attrs={"accept": "video/*,.mkv,.webm,.y4m"}),
    )


class CountField(forms.CharField):
    """An optional count written with decimal suffixes: 5G, 500M, 50K or 2000."""

    def to_python(self, value: Any) -> int | None:
        text = super().to_python(value)
        if not text:
            return None
        try:
            return parse_count(text)
        except ConfigError as error:
            raise forms.ValidationError(str(error)) from error


class SearchForm(forms.Form):
    name = forms.CharField(max_length=120, required=False,
                           widget=forms.TextInput(attrs={"placeholder": "optional"}))
    clip = forms.ModelChoiceField(queryset=Clip.objects.none(), empty_label=None)
    task = forms.ChoiceField(choices=task_choices, initial=_DEFAULTS.task)
    quality = forms.ChoiceField(label="Quality objective",
                                choices=_choices(QUALITY_OBJECTIVES, _QUALITY_LABELS),
                                initial=_DEFAULTS.objectives[0])
    cost = forms.ChoiceField(label="Cost objective",
                             choices=_choices(COST_OBJECTIVES, _COST_LABELS),
                             initial=_DEFAULTS.objectives[1])
    max_macs = CountField(label="Max MACs", required=False,
                          help_text="Per output frame at the resolution below, e.g. 5G or 500M.",
                          widget=forms.TextInput(attrs={"placeholder": "no limit"}))
    max_params = CountField(label="Max params", required=False,
                            help_text="e.g. 50K.",
                            widget=forms.TextInput(attrs={"placeholder": "no limit"}))
    max_latency_ms = forms.FloatField(
        label="Max latency (ms)", required=False, min_value=0.001,
        help_text="Per output frame on this machine, one thread; checked when the search starts.",
        widget=forms.NumberInput(attrs={"placeholder": "no limit", "step": "any"}))
    width = forms.IntegerField(label="Output width", min_value=16, max_value=7680,
                               initial=DEFAULT_RESOLUTION[0])
    height = forms.IntegerField(label="Output height", min_value=16, max_value=4320,
                                initial=DEFAULT_RESOLUTION[1])
    strategy = forms.ChoiceField(choices=lambda: _choices(STRATEGIES.keys(), _STRATEGY_LABELS),
                                 initial=_DEFAULTS.strategy)
    n_trials = forms.IntegerField(label="Trials", min_value=1, max_value=500, initial=12)
    steps = forms.IntegerField(label="Steps per trial", min_value=10, max_value=100_000,
                               initial=_DEFAULTS.budget.steps,
                               help_text="Optimizer steps of proxy training per candidate.")
    workers = forms.IntegerField(min_value=1, max_value=8, initial=1,
                                 help_text="Parallel worker processes sharing the study.")
    seed = forms.IntegerField(min_value=0, max_value=2**31 - 1, initial=_DEFAULTS.seed)
    noise_sigma = forms.FloatField(label="Noise sigma", required=False, min_value=0.1,
                                   max_value=255, initial=_DEFAULTS.noise_sigma,
                                   help_text="Gaussian noise on the 0-255 scale.")
    jpeg_quality = forms.IntegerField(label="JPEG quality", required=False, min_value=1,
                                      max_value=100, initial=_DEFAULTS.jpeg_quality,
                                      help_text="Quality of the degraded input (1-100).")

    # Grouped for the template: (legend, field names).
    SECTIONS = (
        ("What to search", ("name", "clip", "task", "noise_sigma", "jpeg_quality")),
        ("Objectives", ("quality", "cost")),
        ("Budget", ("max_macs", "max_params", "max_latency_ms", "width", "height")),
        ("Search", ("strategy", "n_trials", "steps", "workers", "seed")),
    )

    def __init__(self, *args: Any, user: AbstractBaseUser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clip"].queryset = Clip.objects.filter(owner=user)
        self.config: SearchConfig | None = None

    def sections(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [(legend, [self[name] for name in names]) for legend, names in self.SECTIONS]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        sigma = data.get("noise_sigma")
        quality = data.get("jpeg_quality")
        try:
            config = SearchConfig(
                clip="x",  # tasks.engine_config fills in the stored clip's path
                task=data["task"],
                n_trials=data["n_trials"],
                strategy=data["strategy"],
                objectives=(data["quality"], data["cost"]),
                budget=TrainBudget(steps=data["steps"]),
                constraints=Constraints(max_macs=data.get("max_macs"),
                                        max_params=data.get("max_params"),
                                        max_latency_ms=data.get("max_latency_ms")),
                resolution=(data["width"], data["height"]),
                seed=data["seed"],
                noise_sigma=_DEFAULTS.noise_sigma if sigma is None else sigma,
                jpeg_quality=_DEFAULTS.jpeg_quality if quality is None else quality,
            )
        except ConfigError as error:
            raise forms.ValidationError(str(error)) from error
        self._check_budget(config)
        if not self.errors:
            self.config = config
        return data

    def _check_budget(self, config: SearchConfig) -> None:
        """Refuse a budget no architecture of the space can meet (MACs and params are exact;
        latency is measured, so the engine checks it when the search starts)."""
        bounds = space_bounds(make_task(config.task).scale, config.resolution)
        width, height = config.resolution
        limits = config.constraints
        if limits.max_macs is not None and limits.max_macs < bounds.min_macs:
            self.add_error("max_macs", (
                f"no architecture meets max MACs {format_count(limits.max_macs)}: the smallest "
                f"at {width}x{height} output is {format_count(bounds.min_macs)} MACs"))
        if limits.max_params is not None and limits.max_params < bounds.min_params:
            self.add_error("max_params", (
                f"no architecture meets max params {format_count(limits.max_params)}: the "
                f"smallest has {format_count(bounds.min_params)} parameters"))
