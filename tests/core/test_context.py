import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from tracing_app import (
    ContextThread,
    ContextThreadPoolExecutor,
    bind,
    get_causation_id,
    get_correlation_id,
    wrap,
)
from tracing_app.context import TraceContext, activate, current, deactivate, from_carrier
from tracing_app.ids import is_valid_id
from tracing_app.sampling import is_sampled


def test_bind_mints_sets_and_restores():
    assert get_correlation_id() is None
    with bind() as outer:
        assert len(outer.correlation_id) == 26
        assert get_correlation_id() == outer.correlation_id
        with bind("inner-id", causation_id="cause") as inner:
            assert get_correlation_id() == "inner-id" == inner.correlation_id
            assert get_causation_id() == "cause"
        assert get_correlation_id() == outer.correlation_id
    assert get_correlation_id() is None


def test_activate_and_deactivate_pair_like_signals():
    token = activate(TraceContext("task-1", origin="task"))
    assert current().origin == "task"
    deactivate(token)
    assert current() is None


def test_sequence_is_a_lamport_clock():
    ctx = TraceContext("c")
    assert [ctx.tick(), ctx.tick()] == [1, 2]
    ctx.observe(10)
    assert ctx.tick() == 11
    ctx.observe(3)
    assert ctx.tick() == 12


def test_plain_threads_lose_the_context_and_helpers_keep_it():
    seen = {}
    with bind("thread-id"):
        plain = threading.Thread(target=lambda: seen.__setitem__("plain", get_correlation_id()))
        wrapped = threading.Thread(target=wrap(lambda: seen.__setitem__("wrap", get_correlation_id())))
        helper = ContextThread(target=lambda: seen.__setitem__("thread", get_correlation_id()))
        for thread in (plain, wrapped, helper):
            thread.start()
            thread.join()
    assert seen == {"plain": None, "wrap": "thread-id", "thread": "thread-id"}


def test_executor_jobs_run_in_the_submitters_context():
    with ContextThreadPoolExecutor(max_workers=4) as pool:
        futures = {}
        for n in range(20):
            with bind(f"job-{n}"):
                futures[n] = pool.submit(get_correlation_id)
        assert {n: f.result() for n, f in futures.items()} == {n: f"job-{n}" for n in range(20)}
        assert list(pool.map(lambda _: get_correlation_id(), range(3))) == [None] * 3
    with ThreadPoolExecutor(max_workers=2) as pool, bind("plain-pool"):
        assert pool.submit(get_correlation_id).result() is None
        assert pool.submit(wrap(get_correlation_id)).result() == "plain-pool"


def test_wrapped_callable_can_run_concurrently_in_many_threads():
    with bind("shared"):
        task = wrap(get_correlation_id)
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(lambda _: task(), range(50))) == {"shared"}


def test_asyncio_tasks_are_isolated():
    async def worker(n):
        with bind(f"task-{n}"):
            await asyncio.sleep(0.001 * (n % 3))
            return get_correlation_id()

    async def main():
        return await asyncio.gather(*(worker(n) for n in range(50)))

    assert asyncio.run(main()) == [f"task-{n}" for n in range(50)]
    assert get_correlation_id() is None


def test_bind_samples_at_the_configured_rate_unless_told(settings):
    settings.TRACING_APP = {**settings.TRACING_APP, "SAMPLE_RATE": 0.5}
    decisions = set()
    for _ in range(64):
        with bind() as ctx:
            assert ctx.sampled is is_sampled(ctx.correlation_id)
            decisions.add(ctx.sampled)
    assert decisions == {True, False}
    settings.TRACING_APP = {**settings.TRACING_APP, "SAMPLE_RATE": 0.0}
    with bind() as dropped, bind(sampled=True) as forced:
        assert (dropped.sampled, forced.sampled) == (False, True)


def test_from_carrier_mints_what_the_carrier_did_not_say(settings):
    settings.TRACING_APP = {**settings.TRACING_APP, "SAMPLE_RATE": 0.0}
    minted = from_carrier(None, origin="message")
    assert is_valid_id(minted.correlation_id) and minted.hop_id == minted.correlation_id
    assert minted.sampled is False and minted.sequence == 0
    carried = from_carrier(
        "carried-id", hop_id="hop", causation_id="cause", sequence=7, sampled=True, origin="task"
    )
    assert (carried.correlation_id, carried.hop_id, carried.causation_id) == ("carried-id", "hop", "cause")
    assert (carried.sequence, carried.sampled, carried.origin) == (7, True, "task")
    assert current() is None
