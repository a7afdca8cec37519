import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task
def confirm_order(order_id):
    logger.info("confirming order %s", order_id)
