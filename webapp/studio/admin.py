from django.contrib import admin

from webapp.studio.models import Clip, Invite, Search, SearchEvent, Trial


@admin.register(Clip)
class ClipAdmin(admin.ModelAdmin):
    list_display = ("id", "original_name", "owner", "codec", "width", "height", "frame_count",
                    "duration_s", "size_bytes", "created_at")
    list_filter = ("codec",)
    search_fields = ("original_name", "content_hash", "owner__username")
    readonly_fields = ("content_hash", "created_at")


@admin.register(Search)
class SearchAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "owner", "clip", "status", "finished_trials", "n_trials",
                    "evaluations_done", "evaluations_planned", "workers", "device",
                    "cancel_requested", "created_at", "finished_at")
    list_filter = ("status", "cancel_requested")
    search_fields = ("name", "owner__username", "study_name")
    readonly_fields = ("created_at", "started_at", "finished_at", "event_seq")
    raw_id_fields = ("clip",)


@admin.register(Trial)
class TrialAdmin(admin.ModelAdmin):
    list_display = ("search", "number", "state", "rung", "promoting", "arch", "psnr", "ssim",
                    "macs", "params", "latency_ms", "steps", "on_front", "below_reference")
    list_filter = ("state", "on_front", "rung", "below_reference")
    search_fields = ("arch",)
    raw_id_fields = ("search",)


@admin.register(SearchEvent)
class SearchEventAdmin(admin.ModelAdmin):
    list_display = ("search", "seq", "kind", "created_at")
    list_filter = ("kind",)
    raw_id_fields = ("search",)


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    list_display = ("code", "created_by", "created_at", "expires_at", "used_by", "used_at")
    readonly_fields = ("created_at", "used_by", "used_at")
    raw_id_fields = ("created_by",)
