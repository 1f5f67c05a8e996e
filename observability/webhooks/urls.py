from django.urls import path

from observability.webhooks import views

app_name = "webhooks"

urlpatterns = [
    path("webhooks/", views.webhook_list, name="webhook_list"),
    path("webhooks/<uuid:pk>/delete/", views.webhook_delete, name="webhook_delete"),
]
