from django.urls import path

from checkout_demo import views

app_name = "checkout_demo"

urlpatterns = [
    path("ping/", views.ping, name="ping"),
    path("products/", views.ProductList.as_view(), name="product-list"),
    path("orders/", views.OrderListCreate.as_view(), name="order-list"),
    path("orders/<int:pk>/", views.OrderDetail.as_view(), name="order-detail"),
    path("orders/<int:pk>/checkout/", views.OrderCheckout.as_view(), name="order-checkout"),
]
