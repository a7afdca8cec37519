from django.apps import AppConfig


class CheckoutDemoConfig(AppConfig):
    name = "checkout_demo"
    verbose_name = "Checkout demo"
    default_auto_field = "django.db.models.BigAutoField"
