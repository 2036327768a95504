"""python-backend/flowerconfig.py: what it accepts as FLOWER_BASIC_AUTH, and where from.
(Flower itself started with it, refusing and serving: tests/integration/test_run_script.py.)"""

import os
import subprocess
import sys

import pytest

import flowerconfig
from flowerconfig import basic_auth_problem

CONFIG = flowerconfig.__file__


@pytest.mark.parametrize("value", [
    "admin:123456789012",
    "admin:" + "x" * 43,
    "admin:has:colons-in-it",  # the browser splits user from password at the first ':'
    "admin:flower-secret-123,ops:another-secret-4",
])
def test_sound_values_pass(value):
    assert basic_auth_problem(value) is None


@pytest.mark.parametrize("value, says", [
    (None, "FLOWER_BASIC_AUTH is not set"),
    ("", "FLOWER_BASIC_AUTH is empty"),
    ("   ", "FLOWER_BASIC_AUTH is empty"),
    ("admin", "entry 1 is not user:password"),
    (":secret-password-1", "entry 1 has an empty user"),
    ("admin:short", "entry 1 (user 'admin') has a password of only 5 characters"),
    ("admin:12345678901", "only 11 characters"),
    ("admin:123456789012,", "entry 2 is empty"),
    ("admin:123456789012, ops:123456789012",
     "entry 2 (user ' ops') starts or ends with whitespace"),
])
def test_blank_or_malformed_values_say_what_is_wrong(value, says):
    problem = basic_auth_problem(value)
    assert problem and says in problem and "FLOWER_BASIC_AUTH" in problem
    assert "\n" not in problem
    password = (value or "").partition(":")[2]
    assert len(password) < 4 or password not in problem, "the password was printed"


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    env.update(extra)
    return env


def test_checked_alone_as_a_script(tmp_path):
    def check(**extra):
        return subprocess.run([sys.executable, CONFIG], cwd=tmp_path, env=_env(**extra),
                              capture_output=True, text=True, timeout=60)
    refused = check(FLOWER_BASIC_AUTH="admin:short")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.startswith("flower: refusing to start: FLOWER_BASIC_AUTH")
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert check(FLOWER_BASIC_AUTH="admin:123456789012").returncode == 0
    assert check().returncode == 2  # unset, and no .env here
    (tmp_path / ".env").write_text("FLOWER_BASIC_AUTH='admin:from-the-env-file'\n")
    assert check().returncode == 0
    assert check(FLOWER_BASIC_AUTH="").returncode == 2  # the environment wins over .env


LOAD = """
import flower.options  # defines Flower's options, as `celery flower` does
from tornado.options import options, parse_config_file
parse_config_file(sys.argv[1], final=False)
print(options.basic_auth)
"""


def test_flower_takes_basic_auth_from_dotenv_when_the_environment_has_none(tmp_path):
    (tmp_path / "python-backend").mkdir()
    (tmp_path / ".env").write_text(
        "FLOWER_BASIC_AUTH=admin:from-the-parent-env,ops:second-entry-1\n")
    loaded = subprocess.run([sys.executable, "-c", "import sys" + LOAD, CONFIG],
                            cwd=tmp_path / "python-backend", env=_env(), capture_output=True,
                            text=True, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "['admin:from-the-parent-env', 'ops:second-entry-1']"
