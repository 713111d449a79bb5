from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from evalsite.core.views import home
from evalsite.releases.views import leaderboard_page

urlpatterns = [
    path("admin/", admin.site.urls),
    # Browsers ask for /favicon.ico on pages without a <link rel="icon"> (JSON, images, errors).
    path(
        "favicon.ico",
        RedirectView.as_view(url=static("img/favicon.svg"), permanent=True),
        name="favicon",
    ),
    # OpenAPI 3 of every REST route; the docs page loads its script from here (CSP: 'self').
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    # The root is routed here, where every app may be imported: core's view picks by role and
    # shows researchers the leaderboard.
    path("", home, {"research_home": leaderboard_page}, name="home"),
    path("", include("evalsite.core.urls")),
    path("sets/", include("evalsite.datasets.urls")),
    path("models/", include("models.urls")),
    path("runs/", include("evalsite.evals.urls")),
    path("rate/", include("ratings.urls")),
    path("releases/", include("evalsite.releases.urls")),
    path("fairness/", include("evalsite.fairness.urls")),
]
