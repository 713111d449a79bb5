from django.urls import path

from evalsite.evals import views

app_name = "evals"
urlpatterns = [path("", views.run_list, name="list")]
