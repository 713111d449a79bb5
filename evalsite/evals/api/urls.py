from django.urls import path

from evalsite.evals.api import views
from evalsite.evals.imports.views import RunImport

urlpatterns = [
    path("runs/", views.RunCollection.as_view(), name="api-runs"),
    path("runs/import/", RunImport.as_view(), name="api-run-import"),
    path("runs/<int:pk>/", views.RunStatus.as_view(), name="api-run"),
    path("runs/<int:pk>/results/", views.RunResults.as_view(), name="api-run-results"),
    path("runs/<int:pk>/cancel/", views.RunCancel.as_view(), name="api-run-cancel"),
    path("runs/<int:pk>/reproduce/", views.RunReproduce.as_view(), name="api-run-reproduce"),
]
