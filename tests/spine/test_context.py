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
from tracing_app.context import TraceContext, activate, current, deactivate


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
