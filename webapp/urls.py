from django.contrib import admin
from django.urls import include, path

from webapp.studio.accounts import ThrottledLoginView

urlpatterns = [
    path("admin/", admin.site.urls),
    # Before Django's auth URLs: the same login page, throttled (webapp.studio.accounts).
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("webapp.studio.urls")),
]
