"""The browser front end of metainv (``metainv serve``): a local web app over the public API.

:func:`metainv.web.app.create_app` builds the Starlette app (JSON endpoints and the static page
under ``static/``); :mod:`metainv.web.jobs` runs design and grading jobs in a bounded, persistent
queue. The web layer holds no physics: every number comes from :mod:`metainv`.
"""
