from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("evalsite.core.urls")),
    path("sets/", include("evalsite.datasets.urls")),
    path("models/", include("models.urls")),
    path("runs/", include("evalsite.evals.urls")),
    path("rate/", include("ratings.urls")),
    path("releases/", include("evalsite.releases.urls")),
    path("fairness/", include("evalsite.fairness.urls")),
]
