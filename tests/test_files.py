"""FileAccess is a security boundary: every way out of the roots is refused, and nothing outside is echoed."""

from __future__ import annotations

import os
import socket

import pytest

from entropy_retriever import FileAccess, FileAccessError, InputError

SECRET = "TOP-SECRET-7f3a"


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "notes.txt").write_text("hello from inside\n")
    (root / "sub" / "deep.txt").write_text("deeper text\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    return root, outside


def test_reads_text_inside_the_root_by_relative_and_absolute_path(tree):
    root, _ = tree
    access = FileAccess(root)
    assert access.read_text("notes.txt") == "hello from inside\n"
    assert access.read_text("sub/deep.txt") == "deeper text\n"
    assert access.read_text(str(root / "sub" / "deep.txt")) == "deeper text\n"
    assert access.read_text("sub/../notes.txt") == "hello from inside\n"  # '..' that stays inside is fine


@pytest.mark.parametrize("path", ["../outside/secret.txt", "sub/../../outside/secret.txt", "../../../../etc/passwd"])
def test_dot_dot_escapes_are_refused(tree, path):
    access = FileAccess(tree[0])
    with pytest.raises(FileAccessError, match="outside the folders") as err:
        access.read_text(path)
    assert SECRET not in str(err.value)


def test_absolute_paths_outside_the_roots_are_refused(tree):
    root, outside = tree
    with pytest.raises(FileAccessError, match="not allowed"):
        FileAccess(root).read_text(str(outside / "secret.txt"))
    with pytest.raises(FileAccessError, match="not allowed"):
        FileAccess(root).read_text("/etc/hostname")


def test_a_sibling_folder_sharing_the_roots_prefix_is_outside(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data-private").mkdir()
    (tmp_path / "data-private" / "x.txt").write_text(SECRET)
    with pytest.raises(FileAccessError, match="outside"):
        FileAccess(tmp_path / "data").read_text(str(tmp_path / "data-private" / "x.txt"))


def test_symlinks_that_leave_the_roots_are_refused_and_inside_ones_work(tree):
    root, outside = tree
    (root / "leak.txt").symlink_to(outside / "secret.txt")
    (root / "door").symlink_to(outside, target_is_directory=True)
    (root / "alias.txt").symlink_to(root / "notes.txt")
    access = FileAccess(root)
    for path in ["leak.txt", "door/secret.txt"]:
        with pytest.raises(FileAccessError, match="outside") as err:
            access.read_text(path)
        assert SECRET not in str(err.value)
    assert access.read_text("alias.txt") == "hello from inside\n"


def test_directories_devices_fifos_and_sockets_are_refused(tree, tmp_path):
    root, _ = tree
    access = FileAccess([root, "/dev"])
    with pytest.raises(FileAccessError, match="directory"):
        access.read_text("sub")
    with pytest.raises(FileAccessError, match="not a regular file"):
        access.read_text("/dev/null")
    os.mkfifo(root / "pipe")
    with pytest.raises(FileAccessError, match="not a regular file"):  # and it does not block waiting for a writer
        access.read_text("pipe")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(root / "sock"))
        with pytest.raises(FileAccessError, match="no such file|not a regular file|cannot be opened"):
            access.read_text("sock")
    finally:
        sock.close()


def test_binary_non_utf8_and_oversized_files_are_refused(tree):
    root, _ = tree
    (root / "image.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    (root / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (root / "big.txt").write_text("x" * 2000)
    access = FileAccess(root, max_bytes=1000)
    with pytest.raises(FileAccessError, match="binary"):
        access.read_text("image.bin")
    with pytest.raises(FileAccessError, match="not UTF-8"):
        access.read_text("latin1.txt")
    with pytest.raises(FileAccessError, match="2,000 bytes, over this tool's limit of 1,000"):
        access.read_text("big.txt")


def test_missing_empty_and_nul_paths_get_messages_an_agent_can_act_on(tree):
    access = FileAccess(tree[0])
    with pytest.raises(FileAccessError, match="no such file"):
        access.read_text("nope.txt")
    with pytest.raises(FileAccessError, match="no path given"):
        access.read_text("  ")
    with pytest.raises(FileAccessError, match="NUL"):
        access.read_text("notes.txt\x00.png")


def test_bad_configuration_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not an existing folder"):
        FileAccess(tmp_path / "missing")
    with pytest.raises(InputError, match="at least one root"):
        FileAccess([])
    with pytest.raises(InputError, match="max_bytes"):
        FileAccess(tmp_path, max_bytes=0)


def test_hard_links_are_refused_unless_allowed(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("kept outside the root")
    os.link(outside, root / "link.txt")
    (root / "plain.txt").write_text("an ordinary file")
    with pytest.raises(FileAccessError, match="2 hard links"):
        FileAccess(root).read_text("link.txt")
    assert FileAccess(root).read_text("plain.txt") == "an ordinary file"
    assert FileAccess(root, allow_hard_links=True).read_text("link.txt") == "kept outside the root"
