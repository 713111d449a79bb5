from django.urls import path

from evalsite.datasets import views

app_name = "datasets"
urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("upload/", views.upload, name="upload"),
    path("imports/<int:import_id>/", views.import_detail, name="import"),
    path("imports/<int:import_id>/progress/", views.import_progress, name="import_progress"),
    path("files/<int:item_id>/<str:kind>/", views.item_file, name="item_file"),
    path("<str:name>/", views.dataset_detail, name="detail"),
    path("<str:name>/<str:prefix>/", views.version_detail, name="version"),
]
