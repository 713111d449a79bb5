from django.urls import path

from models import views

app_name = "registry"
urlpatterns = [path("", views.family_list, name="families")]
