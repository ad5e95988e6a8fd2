"""``collectord auth``: getting, exchanging and explaining access tokens, and ``check
--online``. It talks to Meta through the Graph layer (:mod:`collectord.graph`) only and
never prints a token unless asked to with ``--print-token``."""
