from django.urls import include, path

from models import views

app_name = "registry"
# Fixed segments come before <family>/ (their names are reserved as family names).
urlpatterns = [
    path("", views.family_list, name="families"),
    path("upload/", views.upload, name="upload"),
    path("upload/external/", views.upload_external, name="upload-external"),
    path("tokens/", views.tokens, name="tokens"),
    path("api/", include("models.api.urls")),
    path("<str:family>/", views.family_detail, name="family"),
    path("<str:family>/aliases/move/", views.alias_move, name="alias-move"),
    path("<str:family>/<str:version>/", views.version_detail, name="version"),
    path("<str:family>/<str:version>/convert/", views.version_convert, name="version-convert"),
]
