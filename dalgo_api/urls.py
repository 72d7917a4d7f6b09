"""URLs: the REST API under ``/api/`` (docs at ``/api/docs``) and the Django admin under ``/admin/``."""

from django.contrib import admin
from django.urls import path

from dalgo_api.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
]
