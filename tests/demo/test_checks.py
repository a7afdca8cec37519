from django.core.checks import run_checks


def test_the_demo_settings_are_clean():
    assert [m.id for m in run_checks() if m.id.startswith("tracing_app.")] == []
