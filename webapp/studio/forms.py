"""Forms: every choice comes from an engine registry, and the search form builds the engine's
own SearchConfig in clean(), so the engine's messages are the form's messages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from engine.config import (
    COST_OBJECTIVES,
    DEFAULT_RESOLUTION,
    QUALITY_OBJECTIVES,
    ConfigError,
    Constraints,
    Rungs,
    SearchConfig,
    TrainBudget,
    format_count,
    parse_count,
)
from engine.data.enhancement import TASKS, make_task
from engine.search.space_bounds import space_bounds
from engine.search.strategies import STRATEGIES
from engine.train.baselines import LEARNED_BASELINES
from engine.train.trainer import stable_steps
from webapp.studio.models import Clip

_DEFAULTS = SearchConfig(clip="x")
_RUNGS = Rungs()
MULTI, SINGLE = "multi", "single"
# Optimizer steps per second of one worker process (one torch thread) on the project's
# 2-core reference CPU, evaluation, latency and study writes included: 4 random genomes x 600
# steps in 218 s (BENCHMARKS.md, throughput) and 24 NSGA-II trials + 2 baselines x 600 steps
# in 692 s (README). Larger genomes train slower still; a GPU far faster.
STEPS_PER_SECOND = (11.0, 22.5)
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
    n_trials = forms.IntegerField(label="Candidates", min_value=1, max_value=500,
                                  initial=_DEFAULTS.n_trials,
                                  help_text="Architectures trained on the first rung.")
    fidelity = forms.ChoiceField(
        label="Fidelity", initial=MULTI,
        choices=[(MULTI, "Multi-fidelity: promote the best to longer rungs"),
                 (SINGLE, "Single fidelity: every candidate trains the same steps")],
        help_text="Multi-fidelity judges the front at the top rung, where short runs can "
                  "mislead least.")
    min_steps = forms.IntegerField(label="First-rung steps", required=False, min_value=10,
                                   max_value=100_000, initial=_RUNGS.min_steps,
                                   help_text="Every candidate trains this many steps.")
    max_steps = forms.IntegerField(label="Top-rung steps", required=False, min_value=10,
                                   max_value=200_000, initial=_RUNGS.max_steps,
                                   help_text="The final budget: the front and the baselines "
                                             "are judged there.")
    eta = forms.IntegerField(label="Eta", required=False, min_value=2, max_value=16,
                             initial=_RUNGS.eta,
                             help_text="The best 1/eta of a rung move up to eta times the "
                                       "steps.")
    steps = forms.IntegerField(label="Steps per trial", required=False, min_value=10,
                               max_value=100_000, initial=_DEFAULTS.budget.steps,
                               help_text="Optimizer steps of proxy training per candidate.")
    teacher = forms.BooleanField(
        label="Distil from IMDN (pretrained prototype)", required=False,
        help_text="Super-resolution only: the candidates also learn from IMDN's outputs "
                  "(its authors' weights, computed once per training frame).")
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
        ("Search", ("strategy", "n_trials", "workers", "seed")),
        ("Training", ("fidelity", "min_steps", "max_steps", "eta", "steps", "teacher")),
    )
    # Fields that apply to one value of another field: shown only then (search_new.js).
    ONLY = {"noise_sigma": ("task", "denoise"), "jpeg_quality": ("task", "deblock"),
            "min_steps": ("fidelity", MULTI), "max_steps": ("fidelity", MULTI),
            "eta": ("fidelity", MULTI), "steps": ("fidelity", SINGLE)}

    def __init__(self, *args: Any, user: AbstractBaseUser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clip"].queryset = Clip.objects.filter(owner=user)
        self.config: SearchConfig | None = None

    def current(self, name: str) -> Any:
        """The value a field shows: the posted one, else its initial value."""
        if self.is_bound and self.data.get(name):
            return self.data.get(name)
        return self[name].initial

    def sections(self) -> list[tuple[str, list[tuple[forms.BoundField, Any, bool]]]]:
        """(legend, [(field, (controlling field, value) or None, hidden now)])."""
        def row(name: str) -> tuple[forms.BoundField, Any, bool]:
            only = self.ONLY.get(name)
            return self[name], only, only is not None and self.current(only[0]) != only[1]

        return [(legend, [row(name) for name in names]) for legend, names in self.SECTIONS]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        sigma = data.get("noise_sigma")
        quality = data.get("jpeg_quality")
        needed = ("min_steps", "max_steps", "eta") if data["fidelity"] == MULTI else ("steps",)
        for name in needed:
            if data.get(name) is None:
                self.add_error(name, "Needed for this fidelity.")
        if data.get("teacher") and not data["task"].startswith("sr_"):
            label = dict(task_choices()).get(data["task"], data["task"])
            self.add_error("teacher", f"Distillation needs a super-resolution task: {label} "
                                      "has no pretrained prototype (IMDN is x2/x3/x4 SR). "
                                      "Untick it, or pick a super-resolution task.")
        if self.errors:
            return data
        try:
            rungs, budget = fidelity_settings(data)
        except ConfigError as error:
            self.add_error(_rung_field(str(error)), str(error))
            return data
        try:
            config = SearchConfig(
                clip="x",  # tasks.engine_config fills in the stored clip's path
                task=data["task"],
                n_trials=data["n_trials"],
                strategy=data["strategy"],
                objectives=(data["quality"], data["cost"]),
                budget=budget,
                rungs=rungs,
                teacher="imdn" if data.get("teacher") else None,
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
        self._check_compute(config, data["workers"])
        if not self.errors:
            self.config = config
        return data

    def _check_compute(self, config: SearchConfig, workers: int) -> None:
        """The studio's compute cap per search (settings.STUDIO_MAX_SEARCH_STEPS: optimizer
        steps over every rung's planned evaluations and the baselines, as the estimate counts
        them, so candidates x steps of the multi-fidelity plan) and on workers. A step is
        counted at the default batch of patches: a config with more patch pixels per step
        (batch_size x patch_size^2; the form keeps the defaults) counts proportionally more."""
        cap = settings.STUDIO_MAX_SEARCH_STEPS
        total = search_estimate(config, workers)["total_steps"]
        work = round(total * patch_pixels(config.budget) / patch_pixels(_DEFAULTS.budget))
        if work > cap:
            scaled = "" if work == total else (
                f" ({work:,} counted at the default batch of {_DEFAULTS.budget.batch_size} "
                f"patches of {_DEFAULTS.budget.patch_size}x{_DEFAULTS.budget.patch_size})")
            self.add_error(None, (
                f"this search would train {total:,} optimizer steps{scaled}; this studio "
                f"allows at most {cap:,} per search (STUDIO_MAX_SEARCH_STEPS): lower the "
                "candidates, the top-rung steps or the steps per trial"))
        if workers > settings.STUDIO_MAX_WORKERS_PER_SEARCH:
            self.add_error("workers", (
                f"at most {settings.STUDIO_MAX_WORKERS_PER_SEARCH} workers per search on this "
                "studio (STUDIO_MAX_WORKERS_PER_SEARCH)"))

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


def patch_pixels(budget: TrainBudget) -> int:
    """Input pixels of one optimizer step's batch: what a step's compute scales with."""
    return budget.batch_size * budget.patch_size ** 2


def fidelity_settings(data: dict[str, Any]) -> tuple[Rungs | None, TrainBudget]:
    """The engine's rungs (None: single fidelity) and training budget for the form's
    fidelity fields; raises the engine's ConfigError (Rungs validates itself)."""
    if data.get("fidelity", MULTI) == SINGLE:
        return None, TrainBudget(steps=int(data["steps"]))
    rungs = Rungs(min_steps=int(data["min_steps"]), max_steps=int(data["max_steps"]),
                  eta=int(data["eta"]))
    return rungs, TrainBudget()


def _rung_field(message: str) -> str:
    """The form field an engine message about rungs names first (min_steps, max_steps, eta)."""
    places = {name: message.find(name) for name in ("min_steps", "max_steps", "eta")}
    named = {name: at for name, at in places.items() if at >= 0}
    return min(named, key=named.__getitem__) if named else "min_steps"


def search_estimate(config: SearchConfig, workers: int = 1) -> dict[str, Any]:
    """What a search costs in optimizer steps, and roughly in time.

    Every candidate trains the first rung; a promotion from rung k to k + 1 continues the
    candidate's constant-rate state from the end of rung k's stable phase (the decay of rung
    k is redone at the longer budget), so it costs steps[k+1] - stable_steps(steps[k]); the
    learned baselines train to the top rung. Counts per rung are the engine's plan
    (SearchConfig.planned_evaluations: the baseline seeds reach the top rung). The time range
    divides by STEPS_PER_SECOND, measured on a 2-core CPU."""
    steps = list(config.rung_steps)
    planned = config.planned_evaluations
    candidate_steps = planned[0] * steps[0]
    promotion_steps = sum(planned[k + 1] * (steps[k + 1] - stable_steps(steps[k], config.budget))
                          for k in range(len(steps) - 1))
    baseline_steps = len(LEARNED_BASELINES) * steps[-1] if config.learned_baselines else 0
    total = candidate_steps + promotion_steps + baseline_steps
    workers = max(1, workers)
    slow, fast = STEPS_PER_SECOND
    return {
        "rung_steps": steps, "evaluations_per_rung": planned, "evaluations": sum(planned),
        "candidate_steps": candidate_steps, "promotion_steps": promotion_steps,
        "baseline_steps": baseline_steps, "total_steps": total, "workers": workers,
        # Each worker on its own core; fastest first.
        "seconds": [total / (fast * workers), total / (slow * workers)],
        "steps_per_second": [slow, fast],
    }


def estimate_from(values: Any) -> dict[str, Any]:
    """search_estimate for raw form values (a POST, or the page's query while the user
    types); {"error": the engine's message} when they do not make a search."""
    def number(name: str, default: int) -> int:
        text = values.get(name)
        if text in (None, ""):
            return default
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {text!r}") from None

    try:
        rungs, budget = fidelity_settings({
            "fidelity": values.get("fidelity") or MULTI,
            "min_steps": number("min_steps", _RUNGS.min_steps),
            "max_steps": number("max_steps", _RUNGS.max_steps),
            "eta": number("eta", _RUNGS.eta), "steps": number("steps", _DEFAULTS.budget.steps)})
        config = SearchConfig(clip="x", n_trials=number("n_trials", _DEFAULTS.n_trials),
                              budget=budget, rungs=rungs)
        return search_estimate(config, number("workers", 1))
    except ConfigError as error:
        return {"error": str(error)}
