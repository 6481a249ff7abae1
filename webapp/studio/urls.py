from django.urls import path, register_converter

from webapp.studio import (
    accounts,
    api,
    compare,
    deletion,
    exports,
    full_training,
    live_preview,
    previews,
    views,
)


class RowId:
    """A database key: at most 18 digits, so an id past the database's range is a plain 404
    instead of an overflow in the query (Django's `int` takes any length)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(RowId, "id")

app_name = "studio"
urlpatterns = [
    # Pages (views.py)
    path("", views.home, name="home"),
    path("signup/", accounts.signup, name="signup"),
    path("clips/upload/", views.clip_upload, name="clip_upload"),
    path("clips/sample/", views.clip_sample, name="clip_sample"),
    path("clips/<id:clip_id>/", views.clip_detail, name="clip_detail"),
    path("clips/<id:clip_id>/file", views.clip_file, name="clip_file"),
    path("clips/<id:clip_id>/thumbnail.png", views.clip_thumbnail, name="clip_thumbnail"),
    path("clips/<id:clip_id>/delete", deletion.clip_delete, name="clip_delete"),
    path("searches/new/", views.search_new, name="search_new"),
    path("searches/<id:search_id>/", views.search_detail, name="search_detail"),
    path("searches/<id:search_id>/delete", deletion.search_delete, name="search_delete"),
    # JSON and control endpoints (api.py)
    path("api/space-bounds", api.space_bounds_view, name="space_bounds"),
    path("api/searches/<id:search_id>", api.search_data, name="search_data"),
    path("api/searches/<id:search_id>/trials/<id:number>", api.trial_data,
         name="trial_data"),
    path("searches/<id:search_id>/cancel", api.search_cancel, name="search_cancel"),
    path("searches/<id:search_id>/resume", api.search_resume, name="search_resume"),
    path("searches/<id:search_id>/pareto.png", api.search_plot, name="search_plot"),
    path("searches/<id:search_id>/models/<str:candidate>.zip", exports.model_bundle,
         name="model_bundle"),
    path("searches/<id:search_id>/full-train", full_training.full_train_start,
         name="full_train"),
    path("searches/<id:search_id>/full-train/cancel", full_training.full_train_cancel,
         name="full_train_cancel"),
    path("searches/<id:search_id>/crops/trial-<id:number>-<str:side>.png",
         live_preview.crop_file, name="crop_file"),
    # Previews (previews.py)
    path("searches/<id:search_id>/previews", previews.preview_create, name="preview_create"),
    path("previews/<id:preview_id>/", previews.preview_detail, name="preview_detail"),
    path("previews/<id:preview_id>/cancel", previews.preview_cancel, name="preview_cancel"),
    path("previews/<id:preview_id>/<str:name>", previews.preview_file, name="preview_file"),
    path("searches/<id:search_id>/compare", compare.compare_page, name="compare"),
]
