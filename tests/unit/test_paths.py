import pytest

from aios_sandbox.paths import BadPath, check_relative_path


@pytest.mark.parametrize("path", ["a.txt", "dir/sub/file.py", ".hidden", "a..b", "données.csv",
                                  "表.xlsx"])
def test_plain_relative_paths_pass(path):
    assert check_relative_path(path) == path


@pytest.mark.parametrize("path", ["", "/etc/passwd", "../x", "a/../../b", "a//b", "./a", "a/.",
                                  "a\x00b", "x" * 2000])
def test_anything_else_is_refused(path):
    with pytest.raises(BadPath):
        check_relative_path(path)


@pytest.mark.parametrize("path", ["a\nb", "bell\x07", "tab\there", "del\x7f", "bad\ufffdbytes"])
def test_control_characters_and_undecodable_bytes_are_refused(path):
    with pytest.raises(BadPath, match="control character|not valid UTF-8"):
        check_relative_path(path)
