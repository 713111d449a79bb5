from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    # Browsers ask for /favicon.ico on pages without a <link rel="icon"> (JSON, images, errors).
    path(
        "favicon.ico",
        RedirectView.as_view(url=static("img/favicon.svg"), permanent=True),
        name="favicon",
    ),
    path("", include("evalsite.core.urls")),
    path("sets/", include("evalsite.datasets.urls")),
    path("models/", include("models.urls")),
    path("runs/", include("evalsite.evals.urls")),
    path("rate/", include("ratings.urls")),
    path("releases/", include("evalsite.releases.urls")),
    path("fairness/", include("evalsite.fairness.urls")),
]
