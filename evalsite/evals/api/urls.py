from django.urls import path

from evalsite.evals.api import views

urlpatterns = [
    path("runs/", views.RunCollection.as_view(), name="api-runs"),
    path("runs/<int:pk>/", views.RunStatus.as_view(), name="api-run"),
    path("runs/<int:pk>/results/", views.RunResults.as_view(), name="api-run-results"),
    path("runs/<int:pk>/cancel/", views.RunCancel.as_view(), name="api-run-cancel"),
]
