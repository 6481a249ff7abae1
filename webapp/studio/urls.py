from django.urls import path

from webapp.studio import api, compare, exports, full_training, live_preview, previews, views

app_name = "studio"
urlpatterns = [
    # Pages (views.py)
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path("clips/upload/", views.clip_upload, name="clip_upload"),
    path("clips/sample/", views.clip_sample, name="clip_sample"),
    path("clips/<int:clip_id>/", views.clip_detail, name="clip_detail"),
    path("clips/<int:clip_id>/file", views.clip_file, name="clip_file"),
    path("clips/<int:clip_id>/thumbnail.png", views.clip_thumbnail, name="clip_thumbnail"),
    path("searches/new/", views.search_new, name="search_new"),
    path("searches/<int:search_id>/", views.search_detail, name="search_detail"),
    # JSON and control endpoints (api.py)
    path("api/space-bounds", api.space_bounds_view, name="space_bounds"),
    path("api/searches/<int:search_id>", api.search_data, name="search_data"),
    path("api/searches/<int:search_id>/trials/<int:number>", api.trial_data,
         name="trial_data"),
    path("searches/<int:search_id>/cancel", api.search_cancel, name="search_cancel"),
    path("searches/<int:search_id>/resume", api.search_resume, name="search_resume"),
    path("searches/<int:search_id>/pareto.png", api.search_plot, name="search_plot"),
    path("searches/<int:search_id>/models/<str:candidate>.zip", exports.model_bundle,
         name="model_bundle"),
    path("searches/<int:search_id>/full-train", full_training.full_train_start,
         name="full_train"),
    path("searches/<int:search_id>/crops/trial-<int:number>-<str:side>.png",
         live_preview.crop_file, name="crop_file"),
    # Previews (previews.py)
    path("searches/<int:search_id>/previews", previews.preview_create, name="preview_create"),
    path("previews/<int:preview_id>/", previews.preview_detail, name="preview_detail"),
    path("previews/<int:preview_id>/<str:name>", previews.preview_file, name="preview_file"),
    path("searches/<int:search_id>/compare", compare.compare_page, name="compare"),
]
