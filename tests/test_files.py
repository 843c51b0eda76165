"""FileAccess is a security boundary: every way out of the roots is refused, and nothing outside is echoed."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


def test_roots_as_one_string_or_path_and_empty_roots(tree, tmp_path, monkeypatch):
    root, _ = tree
    monkeypatch.chdir(root)
    one = FileAccess("./")  # a string is one folder, never its characters ('.' and '/')
    assert one.read_text("notes.txt") == "hello from inside\n"
    with pytest.raises(FileAccessError, match="not allowed"):
        one.read_text("/etc/hostname")
    assert FileAccess(root).read_text("notes.txt") == FileAccess(Path(root)).read_text("notes.txt")
    for roots in ([root, ""], "a:b:".split(":"), ""):
        with pytest.raises(InputError, match="empty string"):
            FileAccess(roots)
    with pytest.raises(InputError, match="folder path"):
        FileAccess([root, 3])


def test_white_space_in_a_path_is_part_of_the_name(tree):
    root, _ = tree
    (root / "spaced.txt ").write_text("with a trailing space\n")
    access = FileAccess(root)
    assert access.read_text("spaced.txt ") == "with a trailing space\n"
    with pytest.raises(FileAccessError, match="no such file"):
        access.read_text("notes.txt ")  # not notes.txt


def test_links_outside_are_refused_on_the_text_before_the_filesystem_is_looked_at(tree, tmp_path):
    root, outside = tree
    (outside / "dir").mkdir()
    (outside / "lnk").symlink_to(outside / "dir", target_is_directory=True)
    access = FileAccess(root)
    # both are refused alike: the answer does not tell which outside paths are links
    for path in (outside / "lnk" / ".." / "secret.txt", outside / "dir" / ".." / "secret.txt"):
        with pytest.raises(FileAccessError, match="not allowed") as err:
            access.read_text(str(path))
        assert SECRET not in str(err.value)


def test_a_nul_byte_anywhere_makes_a_file_binary(tree):
    root, _ = tree
    (root / "late-nul.txt").write_bytes(b"a" * 20_000 + b"\x00" + b"b" * 10)
    with pytest.raises(FileAccessError, match="binary"):
        FileAccess(root).read_text("late-nul.txt")


def test_numpy_integers_are_integers_and_bools_are_not(tree):
    np = pytest.importorskip("numpy")
    root, _ = tree
    assert FileAccess(root, max_bytes=np.int64(100)).max_bytes == 100
    with pytest.raises(InputError, match="max_bytes"):
        FileAccess(root, max_bytes=True)


def _flip(root: Path, outside: Path, stop: threading.Event, flips: list) -> None:
    """Swap root/a between a real folder and a link to the outside, as fast as possible."""
    real, link = root / "a-real", root / "a-link"
    while not stop.is_set():
        os.rename(real, root / "a")
        os.rename(root / "a", real)
        os.rename(link, root / "a")
        os.rename(root / "a", link)
        flips[0] += 2


@pytest.mark.slow
def test_a_folder_swapped_for_a_link_mid_walk_never_leads_outside(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a-real" / "b").mkdir(parents=True)
    (root / "a-real" / "b" / "f.txt").write_text("inside")
    (outside / "b").mkdir(parents=True)
    (outside / "b" / "f.txt").write_text(SECRET)
    (root / "a-link").symlink_to(outside, target_is_directory=True)
    access = FileAccess(root)
    stop, flips = threading.Event(), [0]
    counts = {"inside": 0, "refused": 0, "outside": 0}
    flipper = threading.Thread(target=_flip, args=(root, outside, stop, flips))
    flipper.start()
    try:
        deadline = time.monotonic() + 6.0
        while time.monotonic() < deadline:
            try:
                text = access.read_text("a/b/f.txt")
            except FileAccessError:
                counts["refused"] += 1
            else:
                counts["inside" if text == "inside" else "outside"] += 1
    finally:
        stop.set()
        flipper.join()
    print(f"race: {sum(counts.values())} tries, {flips[0]} flips, {counts}")
    assert counts["outside"] == 0
    assert counts["inside"] > 0 and counts["refused"] > 0 and flips[0] > 100  # the race really ran


SEGMENTS = st.sampled_from(["..", ".", "", "sub", "deep.txt", "notes.txt", "notes.txt ", " notes.txt", "secret.txt",
                            "out", "in", "loop", "door", "ü.txt", "~", "..."])


@pytest.mark.slow
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(SEGMENTS, min_size=1, max_size=6), start=st.sampled_from(["", "root", "outside", "tmp"]),
       separator=st.sampled_from(["/", "//", "/./"]))
def test_no_generated_path_ever_returns_the_outside_secret(hostile_tree, parts, start, separator):
    root, outside, access = hostile_tree
    prefix = {"": "", "root": str(root) + "/", "outside": str(outside) + "/", "tmp": str(root.parent) + "/"}[start]
    path = prefix + separator.join(parts)
    try:
        text = access.read_text(path)
    except FileAccessError as err:
        assert SECRET not in str(err)
    else:
        assert SECRET not in text


@pytest.fixture(scope="module")
def hostile_tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    root, outside = base / "root", base / "outside"
    (root / "sub").mkdir(parents=True)
    (root / "notes.txt").write_text("hello from inside\n")
    (root / "sub" / "deep.txt").write_text("deeper text\n")
    (root / "ü.txt").write_text("unicode inside\n")
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (outside / "notes.txt").write_text(SECRET)
    (root / "out").symlink_to(outside, target_is_directory=True)
    (root / "in").symlink_to(root / "sub", target_is_directory=True)
    (root / "loop").symlink_to(root / "loop")
    (root / "sub" / "door").symlink_to("../../outside", target_is_directory=True)
    (root / "secret.txt").symlink_to(outside / "secret.txt")
    return root, outside, FileAccess(root)
