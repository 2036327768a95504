"""Flower's configuration file: it locks Flower's door or stops Flower at start.

`celery -A app.celery flower` reads flowerconfig.py from its working directory (Flower's
`--conf` default), so the design's command run from python-backend/, `make run` and the
compose image (WORKDIR /srv/python-backend) all load this file. Flower executes it after it
has parsed FLOWER_BASIC_AUTH (and --basic-auth) into its `basic_auth` option; a blank value
would become [''], which lets `Authorization: Basic =` in, shutdown and revoke included.
So FLOWER_BASIC_AUTH is required here: comma-separated `user:password` entries, each with a
user and a password of at least 12 characters. Otherwise Flower stops with one line on
stderr, exit status 2. Unset in the environment, it is read from `.env` or `../.env` as the
web and worker settings are (the environment wins). `python flowerconfig.py` checks alone.

Names defined here that match one of Flower's options set it, so helpers are private.
"""

MIN_PASSWORD_CHARS = 12
VARIABLE = "FLOWER_BASIC_AUTH"


def basic_auth_problem(value):
    """What is wrong with a FLOWER_BASIC_AUTH value (None: unset), or None if nothing."""
    advice = (f"it takes user:password entries, comma-separated, each password of at least "
              f"{MIN_PASSWORD_CHARS} characters (scripts/ensure-env.sh generates one into .env)")
    if value is None:
        return f"{VARIABLE} is not set; {advice}"
    if not value.strip():
        return f"{VARIABLE} is empty; {advice}"
    problems = []
    for number, entry in enumerate(value.split(","), 1):
        user, colon, password = entry.partition(":")
        where = f"entry {number}" + (f" (user {user!r})" if colon and user.strip() else "")
        if not entry.strip():
            problems.append(f"entry {number} is empty")
        elif entry != entry.strip():
            problems.append(f"{where} starts or ends with whitespace")
        elif not colon:
            problems.append(f"entry {number} is not user:password (it has no ':')")
        elif not user:
            problems.append(f"entry {number} has an empty user")
        elif len(password) < MIN_PASSWORD_CHARS:
            problems.append(f"{where} has a password of only {len(password)} characters")
    if problems:
        return f"{VARIABLE}: {', '.join(problems)}; {advice}"
    return None


def _from_env_files():
    """FLOWER_BASIC_AUTH as the web's settings would read it from .env files (later wins)."""
    from dotenv import dotenv_values
    found = None
    for name in (".env", "../.env"):
        value = dotenv_values(name).get(VARIABLE)
        if value is not None:
            found = value
    return found


def _stop(problem):
    import sys
    print(f"flower: refusing to start: {problem}", file=sys.stderr, flush=True)
    # SystemExit passes through Flower's config loading and Click: exit status 2, no traceback.
    sys.exit(2)


if globals().get("__name__") is None:  # executed by Flower (tornado's parse_config_file)
    from tornado.options import options as _options
    # FLOWER_BASIC_AUTH or --basic-auth split on commas: [] when neither is given, [''] blank.
    _given = _options.basic_auth
    _value = ",".join(_given) if _given else _from_env_files()
    _problem = basic_auth_problem(_value)
    if _problem:
        _stop(_problem)
    if not _given:
        basic_auth = _value.split(",")  # noqa: F841 (read by Flower: its basic_auth option)

    # A quiet start: while no worker is up yet (Flower starts beside it), each inspection
    # Flower sends gets no reply and it warns "Inspect method stats failed": nothing to act
    # on. The warning with a cause (a broker error) still shows.
    import logging as _logging
    _logging.getLogger("flower.inspector").addFilter(
        lambda record: record.msg != "Inspect method %s failed")
elif __name__ == "__main__":  # `python flowerconfig.py`: the same check, e.g. before a start
    import os as _os
    _value = _os.environ.get(VARIABLE)
    _problem = basic_auth_problem(_value if _value is not None else _from_env_files())
    if _problem:
        _stop(_problem)
