"""The MiniMax M2-her layer: everything Troupe knows about HTTP, SSE and the API's errors.

* :mod:`bot.llm.types`: typed, validated requests and results;
* :mod:`bot.llm.client`: :class:`~bot.llm.client.M2HerClient` (complete, stream, retries);
* :mod:`bot.llm.errors`: the typed failures and the code/HTTP-status mapping;
* :mod:`bot.llm.sse` and :mod:`bot.llm.response`: the stream parser and reply assembly;
* :mod:`bot.llm.retry`: :class:`~bot.llm.retry.RetryPolicy` and backoff;
* :mod:`bot.llm.tokens`: the shared token estimate;
* :mod:`bot.llm.fake`: the fake M2-her server for tests and demos.

The wire format and its uncertainties are described in ``docs/m2her-api.md``.
"""
