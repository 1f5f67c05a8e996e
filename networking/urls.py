app_name = "networking"

urlpatterns: list = []
