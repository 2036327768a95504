import pytest

from aios_sandbox.paths import BadPath, check_relative_path


@pytest.mark.parametrize("path", ["a.txt", "dir/sub/file.py", ".hidden", "a..b"])
def test_plain_relative_paths_pass(path):
    assert check_relative_path(path) == path


@pytest.mark.parametrize("path", ["", "/etc/passwd", "../x", "a/../../b", "a//b", "./a", "a/.",
                                  "a\x00b", "x" * 2000])
def test_anything_else_is_refused(path):
    with pytest.raises(BadPath):
        check_relative_path(path)
