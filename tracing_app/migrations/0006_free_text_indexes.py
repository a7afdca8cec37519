from django.db import migrations

# Free text on PostgreSQL: a trigram index on the event's name and one on its searched attributes, in
# place of one on both joined, where a rare word read every entry of each trigram that common task and
# view names share. tracing_app.traces.queries matches the attributes against this very expression.
ATTRIBUTE_TEXT = (
    "(coalesce(attributes->>'message', '') || ' ' || coalesce(attributes->>'exception', '')"
    " || ' ' || coalesce(attributes->>'exception_message', '') || ' ' || coalesce(attributes->>'args', ''))"
)
# The index this replaces, as 0004 created it.
JOINED_TEXT = (
    "(name || ' ' || coalesce(attributes->>'message', '') || ' ' || coalesce(attributes->>'exception', '')"
    " || ' ' || coalesce(attributes->>'exception_message', '') || ' ' || coalesce(attributes->>'args', ''))"
)


def _table(apps, schema_editor):
    return schema_editor.quote_name(apps.get_model("tracing_app", "TraceEvent")._meta.db_table)


# CONCURRENTLY: recording keeps writing events while a large table is indexed.
def split_text_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = _table(apps, schema_editor)
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS tracing_event_name_text ON {table} "
        "USING gin (name gin_trgm_ops)"
    )
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS tracing_event_attribute_text ON {table} "
        f"USING gin ({ATTRIBUTE_TEXT} gin_trgm_ops)"
    )
    schema_editor.execute("DROP INDEX CONCURRENTLY IF EXISTS tracing_event_text")


def join_text_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = _table(apps, schema_editor)
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS tracing_event_text ON {table} "
        f"USING gin ({JOINED_TEXT} gin_trgm_ops)"
    )
    schema_editor.execute("DROP INDEX CONCURRENTLY IF EXISTS tracing_event_name_text")
    schema_editor.execute("DROP INDEX CONCURRENTLY IF EXISTS tracing_event_attribute_text")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tracing_app", "0005_dropped_events"),
    ]

    operations = [
        migrations.RunPython(split_text_index, join_text_index),
    ]
