from django.http import HttpRequest, HttpResponse
from django.urls import path


def placeholder(request: HttpRequest) -> HttpResponse:
    return HttpResponse("Pixel AutoML Studio: the web studio is not built yet; "
                        "run `python -m engine search CLIP` meanwhile.", content_type="text/plain")


urlpatterns = [path("", placeholder)]
