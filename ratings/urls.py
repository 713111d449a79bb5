from django.urls import include, path

from ratings import views

app_name = "ratings"
urlpatterns = [
    path("", views.next_task, name="next"),  # the annotator's home
    path("attributes/", include("ratings.attribute_urls")),  # skin tone / gender labels
    path("start/", views.start_view, name="start"),  # POST: lease, then back to the page
    path("api/state", views.state_view, name="state"),  # GET: what the annotator holds
    path("api/lease", views.lease_view, name="lease"),  # POST: lease the next tasks
    path("api/submit", views.submit_view, name="submit"),
    path("api/votes", views.votes_view, name="votes"),  # POST: the page's outbox, in batches
    path("i/<str:token>/<str:slot>", views.image_view, name="image"),
    path("campaigns/", views.campaign_list_view, name="campaigns"),
    path("campaigns/new/", views.campaign_create_view, name="create"),
    path("campaigns/<int:pk>/", views.campaign_detail_view, name="campaign"),
    path("campaigns/<int:pk>/status/", views.campaign_status_view, name="status"),
    path("campaigns/<int:pk>/recompute/", views.campaign_recompute_view, name="recompute"),
    path("campaigns/<int:pk>/export.<str:fmt>", views.campaign_export_view, name="export"),
]
