"""API routes, mounted at /models/api/ by models/urls.py (see models/README-api.md)."""

from django.urls import path

from models.api import views

urlpatterns = [
    path("families/", views.family_list, name="api-families"),
    path("families/<str:family>/versions/", views.family_versions, name="api-versions"),
    path("families/<str:family>/aliases/<str:name>/", views.alias_detail, name="api-alias"),
    path("versions/<int:pk>/", views.version_detail, name="api-version"),
]
