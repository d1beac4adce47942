"""``infrabot serve``: GitHub webhooks in, a durable queue, one worker calling ``process``.

Import from the modules (``bot.server.serve``, ``bot.server.queue``, …): this package
file stays empty so that ``infrabot --help`` does not load the web stack.
"""
