from django.contrib.auth import views as auth_views
from django.urls import path

from evalsite.core import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("system/", views.system, name="system"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
