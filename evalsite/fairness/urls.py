from django.urls import path

from evalsite.fairness import api, views

app_name = "fairness"
urlpatterns = [
    path("runs/<int:pk>/", views.run_fairness_view, name="run"),
    path("compare/", views.compare_fairness_view, name="compare"),
    path("api/runs/<int:pk>/", api.RunFairness.as_view(), name="api-run"),
]
