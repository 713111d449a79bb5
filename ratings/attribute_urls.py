"""URLs of attribute annotation, included under /rate/attributes/ in the ratings namespace."""

from django.urls import path

from ratings.views import attributes

urlpatterns = [
    path("", attributes.attribute_rate_view, name="attr_rate"),
    path("start/", attributes.attribute_start_view, name="attr_start"),  # POST, then back
    path("api/state", attributes.attribute_state_view, name="attr_state"),  # GET: what is held
    path("api/lease", attributes.attribute_lease_view, name="attr_lease"),  # POST: lease more
    path("api/submit", attributes.attribute_submit_view, name="attr_submit"),
    path("campaigns/new/", attributes.attribute_campaign_new_view, name="attr_new"),
    path("campaigns/<int:pk>/", attributes.attribute_campaign_view, name="attr_campaign"),
    path(
        "campaigns/<int:pk>/status/", attributes.attribute_campaign_status_view, name="attr_status"
    ),
    path(
        "campaigns/<int:pk>/accept/", attributes.attribute_campaign_accept_view, name="attr_accept"
    ),
]
