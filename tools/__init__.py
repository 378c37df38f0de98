"""Developer tools run by ``make`` and ``gradlab bench``, not collected as tests.

    server         the one helper that starts and stops a local app server (tests use it too)
    browser        Debian's Chromium and its launch flags
    bench          ``python -m tools.bench [--quick] [--json PATH]``: the benchmark suite
    bench_steps    its timed engine sections (plain vs engine step, deep, Jacobian)
    bench_browser  its live-app section (the playground streaming in Chromium)
    load           ``python -m tools.load``: load, burst and soak runs, and their report
    load_runs      the load and burst runs
    soak           the soak run
    clients        a load session as a Chromium page or as a protocol client
    protocol       Streamlit's websocket protocol from the client's side
"""
