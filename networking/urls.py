from django.urls import path

from networking import views

app_name = "networking"

urlpatterns = [
    path("networks/", views.network_list, name="network_list"),
    path("networks/<uuid:pk>/delete/", views.network_delete, name="network_delete"),
    path("firewalls/", views.firewall_list, name="firewall_list"),
    path("firewalls/<uuid:pk>/rules/", views.firewall_rules, name="firewall_rules"),
    path("firewalls/<uuid:pk>/delete/", views.firewall_delete, name="firewall_delete"),
]
