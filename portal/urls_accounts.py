from django.urls import include, path

from portal import second_factor, views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("second-factor/", second_factor.second_factor, name="second_factor"),
    path("", include("django.contrib.auth.urls")),
]
