from django.urls import path

from evalsite.releases import api, gate_api, views

app_name = "releases"
urlpatterns = [
    path("", views.leaderboard_view, name="leaderboard"),
    path("reports/", views.reports_view, name="reports"),
    path("reports/<int:pk>/", views.report_view, name="report"),
    path("reports/<int:pk>/report.json", views.report_json_view, name="report_json"),
    path("reports/<int:pk>/report.html", views.report_html_view, name="report_html"),
    path("reports/<int:pk>/report.csv", views.report_csv_view, name="report_csv"),
    path("reports/<int:pk>/decide/", views.decide_view, name="decide"),
    path("reports/<int:pk>/rebuild/", views.rebuild_view, name="rebuild"),
    path("history/", views.history_view, name="history"),
    path("gates/", views.gates_view, name="gates"),
    path("api/reports/", api.ReportCollection.as_view(), name="api_reports"),
    path("api/reports/<int:pk>/", api.ReportDetail.as_view(), name="api_report"),
    path("api/reports/<int:pk>/decision/", api.ReportDecision.as_view(), name="api_decision"),
    path("api/reports/<int:pk>/rebuild/", api.ReportRebuild.as_view(), name="api_rebuild"),
    path("api/gate/", gate_api.GateCollection.as_view(), name="api_gates"),
    path("api/gate/<int:pk>/", gate_api.GateDetail.as_view(), name="api_gate"),
]
