"""``tools/system_deps.sh``: the README's commands find a browser under any of its names, and
install system packages only where the user may (root or passwordless sudo); otherwise they say
what to install. Run with a PATH that holds only stubs, so that the machine's own programs and
privileges do not matter."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "system_deps.sh"


def _stub(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/bash\n" + body + "\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def fake_bin(tmp_path):
    folder = tmp_path / "bin"
    folder.mkdir()
    # apt-get records its arguments and "installs" chromium by creating a stub
    _stub(
        folder,
        "apt-get",
        f'echo "$@" >> {tmp_path}/apt.log\n'
        f'case "$*" in *"install"*chromium*) printf "#!/bin/bash\\n" > {folder}/chromium; '
        f"/bin/chmod 755 {folder}/chromium;; esac",
    )
    return folder


def _run(folder: Path, what: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["/bin/bash", str(SCRIPT), what],
        env={"PATH": str(folder)},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("name", ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"])
def test_finds_any_chrome_without_installing(fake_bin, tmp_path, name):
    _stub(fake_bin, "id", "echo 1000")
    browser = _stub(fake_bin, name, "exit 0")
    result = _run(fake_bin, "browser")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(browser)
    assert not (tmp_path / "apt.log").exists()


def test_a_normal_user_without_sudo_is_told_what_to_install(fake_bin, tmp_path):
    _stub(fake_bin, "id", "echo 1000")
    _stub(fake_bin, "sudo", "exit 1")  # sudo asks for a password
    result = _run(fake_bin, "browser")
    assert result.returncode == 1
    assert "cannot install" in result.stderr and "apt-get install chromium" in result.stderr
    assert not (tmp_path / "apt.log").exists(), "no install attempted without the right to install"


def test_root_installs_chromium(fake_bin, tmp_path):
    _stub(fake_bin, "id", "echo 0")
    result = _run(fake_bin, "browser")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(fake_bin / "chromium")
    assert "install -y -qq chromium" in (tmp_path / "apt.log").read_text()


def test_passwordless_sudo_installs_through_sudo(fake_bin, tmp_path):
    _stub(fake_bin, "id", "echo 1000")
    _stub(fake_bin, "sudo", 'if [ "$1" = -n ] && [ "$2" = true ]; then exit 0; fi; shift; "$@"')
    result = _run(fake_bin, "browser")
    assert result.returncode == 0, result.stderr
    assert "install -y -qq chromium" in (tmp_path / "apt.log").read_text()


def test_tcmalloc_is_optional_and_says_so(fake_bin):
    _stub(fake_bin, "id", "echo 1000")
    result = _run(fake_bin, "tcmalloc")
    if result.returncode == 0:  # this machine has tcmalloc installed: the script found it
        assert "libtcmalloc_minimal" in result.stdout
    else:
        assert "Optional" in result.stderr


def test_the_book_build_is_offline_by_construction():
    """Every `make book` trains on the bundled MNIST (GENCOURSE_OFFLINE=1), network or not, and
    both the notebook execution and the Jupyter Book build run with that environment."""
    makefile = (ROOT / "Makefile").read_text()
    cpu_env = makefile.split("CPU_ENV :=", 1)[1].split("\n\n", 1)[0]
    assert "GENCOURSE_OFFLINE=1" in cpu_env
    recipe = makefile.split("\nbook:", 1)[1].split("\n\n", 1)[0]
    assert "$(CPU_ENV) OMP_NUM_THREADS=1" in recipe and "$(CPU_ENV) $(BIN)/jupyter-book build" in recipe
