from django.urls import include, path

from evalsite.evals import views
from evalsite.evals.imports.views import run_import_view

app_name = "evals"
urlpatterns = [
    path("", views.run_list_view, name="list"),
    path("start/", views.run_start_view, name="start"),
    path("import/", run_import_view, name="import"),
    path("compare/", views.compare_view, name="compare"),
    path("compare/intervals/", views.compare_intervals_view, name="compare_intervals"),
    path("api/", include("evalsite.evals.api.urls")),
    path("<int:pk>/", views.run_detail_view, name="detail"),
    path("<int:pk>/progress.json", views.run_progress_view, name="progress"),
    path("<int:pk>/cancel/", views.run_cancel_view, name="cancel"),
    path("<int:pk>/rerun/", views.run_rerun_view, name="rerun"),
    path("<int:pk>/reproduce/", views.run_reproduce_view, name="reproduce"),
    path("<int:pk>/items/", views.run_items_view, name="items"),
    path("<int:pk>/items/<int:item_id>/", views.run_item_view, name="item"),
    path("<int:pk>/items/<int:item_id>/<str:role>", views.run_file_view, name="file"),
    path("<int:pk>/results.csv", views.run_csv_view, name="csv"),
    path("<int:pk>/results.json", views.run_json_view, name="json"),
]
