"""Sandboxes: the bubblewrap runtime for real (the fixture server in bwrap), and the Docker container spec."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from mcp_app.client import McpUnavailable, mcp_manager
from mcp_app.info import McpServerConfig
from mcp_app.sandbox import (
    DOCKER_LABEL,
    SandboxUnavailable,
    bubblewrap_argv,
    docker_container_spec,
    runtime_resolve,
    sandbox_environment,
)
from mcp_app.selectors import mcp_server_config

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


def test_runtime_resolution() -> None:
    assert (
        runtime_resolve(sandbox="auto", transport="stdio", sandbox_enabled=True, bwrap_available=True) == "bubblewrap"
    )
    assert runtime_resolve(sandbox="auto", transport="stdio", sandbox_enabled=True, bwrap_available=False) == "none"
    assert runtime_resolve(sandbox="auto", transport="stdio", sandbox_enabled=False, bwrap_available=True) == "none"
    assert runtime_resolve(sandbox="docker", transport="stdio", sandbox_enabled=False, bwrap_available=True) == "docker"
    assert runtime_resolve(sandbox="bubblewrap", transport="sse", sandbox_enabled=True, bwrap_available=True) == "none"


def test_sandbox_environment_is_an_allowlist() -> None:
    host = {"PATH": "/bin", "LANG": "C.UTF-8", "HOME": "/root", "ANTHROPIC_API_KEY": "sk-x", "DATABASE_URL": "pg://"}
    env = sandbox_environment(host, {"TOKEN": "t"})
    assert env == {"PATH": "/bin", "LANG": "C.UTF-8", "HOME": "/tmp", "TOKEN": "t"}


def test_bubblewrap_argv(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    argv = bubblewrap_argv(
        bwrap="/usr/bin/bwrap", command="srv", args=["--x"], root=root, unset=["USER", "SHELL"], hidden=[data]
    )
    assert argv[:10] == ["/usr/bin/bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    assert argv[argv.index("--bind") : argv.index("--bind") + 3] == ["--bind", str(root), str(root)]
    assert ["--tmpfs", str(data)] == argv[argv.index(str(data)) - 1 : argv.index(str(data)) + 1]
    for flag in ("--unshare-all", "--die-with-parent", "--new-session"):
        assert flag in argv
    assert "--share-net" not in argv
    assert argv[-3:] == ["--", "srv", "--x"]
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert argv[argv.index("--unsetenv") : argv.index("--unsetenv") + 4] == [
        "--unsetenv",
        "SHELL",
        "--unsetenv",
        "USER",
    ]
    secret_file = tmp_path / "key.pem"
    secret_file.write_text("k", encoding="utf-8")
    covered = bubblewrap_argv(
        bwrap="bwrap", command="srv", args=[], root=root, hidden=[secret_file, tmp_path / "absent"]
    )
    assert ["--ro-bind", "/dev/null", str(secret_file)] == covered[
        covered.index(str(secret_file)) - 2 : covered.index(str(secret_file)) + 1
    ]
    assert str(tmp_path / "absent") not in covered
    networked = bubblewrap_argv(bwrap="bwrap", command="srv", args=[], root=root, network=True)
    assert networked.index("--share-net") == networked.index("--unshare-all") + 1


def test_a_hidden_directory_holding_the_root_is_covered_before_the_root_is_bound(tmp_path: Path) -> None:
    data = tmp_path / "data"
    root = data / "workspaces" / "ws"
    root.mkdir(parents=True)
    argv = bubblewrap_argv(bwrap="bwrap", command="srv", args=[], root=root, hidden=[data])
    assert argv.index(str(data)) < argv.index("--bind")


@pytest.fixture
def sandboxed(
    make_server: Callable[..., Any], make_workspace: Callable[..., Any], tmp_path: Path
) -> tuple[McpServerConfig, Path]:
    root = tmp_path / "workspace"
    root.mkdir()
    make_workspace(root)
    row = make_server(name="boxed", sandbox="bubblewrap", env={"SERVER_SETTING": "configured"})
    config = mcp_server_config(row)
    assert config.runtime == "bubblewrap"
    return config, root


def _call(config: McpServerConfig, root: Path, tool: str, **arguments: Any) -> Any:
    return mcp_manager().call_tool(config, tool=tool, arguments=arguments, workspace_root=root)


@needs_bwrap
def test_bubblewrap_writes_inside_the_workspace_only(sandboxed: tuple[McpServerConfig, Path], tmp_path: Path) -> None:
    config, root = sandboxed
    inside = _call(config, root, "write_file", path=str(root / "note.txt"), text="from the sandbox")
    assert not inside.is_error
    assert (root / "note.txt").read_text(encoding="utf-8") == "from the sandbox"
    outside_dir = tmp_path / "outside"
    outside_dir.mkdir()
    outside = _call(config, root, "write_file", path=str(outside_dir / "x.txt"), text="escape")
    assert outside.is_error
    assert not (outside_dir / "x.txt").exists()
    host = _call(config, root, "write_file", path=str(Path(sys.executable).parent / "lynkr-escape"), text="x")
    assert host.is_error
    assert "Read-only file system" in host.content[0].text
    assert not (Path(sys.executable).parent / "lynkr-escape").exists()


@needs_bwrap
def test_bubblewrap_filters_the_environment_and_hides_the_data_dir(
    sandboxed: tuple[McpServerConfig, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LYNKR_TEST_GATEWAY_SECRET", "must-not-leak")
    monkeypatch.setenv("USER", "gateway-user")  # one of the SDK's inherited defaults
    config, root = sandboxed
    mcp_manager().restart(config.id)  # started after the variables exist in the gateway's environment
    assert _call(config, root, "env", name="LYNKR_TEST_GATEWAY_SECRET").content[0].text == "<unset>"
    assert _call(config, root, "env", name="USER").content[0].text == "<unset>"
    assert _call(config, root, "env", name="SERVER_SETTING").content[0].text == "configured"
    assert _call(config, root, "env", name="HOME").content[0].text == "/tmp"
    secret = Path(settings.DATA_DIR) / "secret-key-probe"
    secret.write_text("gateway secret", encoding="utf-8")
    hidden = _call(config, root, "read_file", path=str(secret))
    assert hidden.is_error
    assert "No such file" in hidden.content[0].text


@needs_bwrap
def test_a_data_dir_outside_tmp_is_hidden_too(sandboxed: tuple[McpServerConfig, Path]) -> None:
    config, root = sandboxed
    data_dir = Path(tempfile.mkdtemp(prefix="lynkr-data-", dir="/var/tmp"))  # not under the private /tmp
    try:
        (data_dir / "db.sqlite3").write_text("rows", encoding="utf-8")
        with override_settings(DATA_DIR=data_dir):
            mcp_manager().restart(config.id)
            hidden = _call(config, root, "read_file", path=str(data_dir / "db.sqlite3"))
        assert hidden.is_error and "No such file" in hidden.content[0].text
        mcp_manager().restart(config.id)
        assert _call(config, root, "read_file", path=str(data_dir / "db.sqlite3")).content[0].text == "rows"
    finally:
        mcp_manager().restart(config.id)
        shutil.rmtree(data_dir)


def test_server_secrets_stay_off_the_bwrap_command_line(sandboxed: tuple[McpServerConfig, Path]) -> None:
    from mcp_app.transports import stdio_parameters

    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    config, root = sandboxed
    params = stdio_parameters(config, root)
    assert all("configured" not in arg for arg in [params.command, *params.args])  # /proc/<pid>/cmdline is public
    assert params.env is not None and params.env["SERVER_SETTING"] == "configured"
    assert params.env["HOME"] == "/tmp"


@needs_bwrap
def test_each_workspace_gets_its_own_sandboxed_process(sandboxed: tuple[McpServerConfig, Path], tmp_path: Path) -> None:
    config, root = sandboxed
    other = tmp_path / "other"
    other.mkdir()
    assert not _call(config, other, "write_file", path=str(other / "b.txt"), text="b").is_error
    assert _call(config, root, "write_file", path=str(other / "c.txt"), text="c").is_error
    roots = {key_root for server_id, key_root, _ in mcp_manager().sessions() if server_id == config.id}
    assert {str(root.resolve()), str(other.resolve())} <= roots


@pytest.mark.django_db
def test_auto_sandbox_follows_the_setting(make_server: Callable[..., Any]) -> None:
    row = make_server(name="auto", sandbox="auto")
    with override_settings(LYNKR_MCP_SANDBOX_ENABLED=False):
        assert mcp_server_config(row).runtime == "none"
    with override_settings(LYNKR_MCP_SANDBOX_ENABLED=True):
        expected = "bubblewrap" if shutil.which("bwrap") else "none"
        assert mcp_server_config(row).runtime == expected


def _docker_server(**fields: Any) -> McpServerConfig:
    values: dict[str, Any] = {
        "id": 7,
        "name": "gh",
        "command": "github-mcp-server",
        "args": ("stdio",),
        "env": {"GITHUB_TOKEN": "ghp_x"},
        "runtime": "docker",
        "docker_image": "ghcr.io/github/github-mcp-server:1",
    }
    values.update(fields)
    return McpServerConfig(**values)


def test_docker_container_spec_has_every_control(tmp_path: Path) -> None:
    spec = docker_container_spec(_docker_server(), tmp_path, uid=1000, gid=1000)
    root = str(tmp_path.resolve())
    assert spec["image"] == "ghcr.io/github/github-mcp-server:1"
    assert spec["command"] == ["github-mcp-server", "stdio"]
    assert spec["read_only"] is True
    assert spec["security_opt"] == ["no-new-privileges"]
    assert spec["cap_drop"] == ["ALL"]
    assert spec["mem_limit"] == "512m" and spec["memswap_limit"] == "512m"
    assert spec["nano_cpus"] == 1_000_000_000
    assert spec["pids_limit"] == 256
    assert spec["network_mode"] == "none"
    assert spec["volumes"] == {root: {"bind": root, "mode": "rw"}}
    assert spec["working_dir"] == root
    assert set(spec["tmpfs"]) == {"/tmp"}
    assert spec["environment"] == {"HOME": "/tmp", "GITHUB_TOKEN": "ghp_x"}
    assert (spec["stdin_open"], spec["tty"], spec["detach"], spec["auto_remove"]) == (True, False, True, True)
    assert spec["user"] == "1000:1000"
    assert spec["labels"] == {DOCKER_LABEL: "gh"}
    assert spec["init"] is True


def test_docker_spec_network_only_when_allowed(tmp_path: Path) -> None:
    assert docker_container_spec(_docker_server(sandbox_network=True), tmp_path)["network_mode"] == "bridge"
    with pytest.raises(SandboxUnavailable, match="has no image"):
        docker_container_spec(_docker_server(docker_image=""), tmp_path)


def test_docker_spec_is_accepted_by_the_docker_sdk(tmp_path: Path) -> None:
    """The keyword arguments are ones docker-py's create understands (it builds the request without an engine)."""
    from docker.models.containers import _create_container_args

    create = {key: value for key, value in docker_container_spec(_docker_server(), tmp_path).items() if key != "detach"}
    request = _create_container_args({**create, "version": "1.47"})
    host = request["host_config"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["NetworkMode"] == "none"
    assert host["PidsLimit"] == 256
    assert host["NanoCpus"] == 1_000_000_000
    assert host["Memory"] == 512 * 1024 * 1024
    assert host["Binds"] == [f"{tmp_path.resolve()}:{tmp_path.resolve()}:rw"]
    assert request["environment"] == {"HOME": "/tmp", "GITHUB_TOKEN": "ghp_x"}
    assert request["stdin_open"] is True


@pytest.mark.django_db
def test_docker_runtime_without_an_engine_is_a_clear_error(
    make_server: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-docker.sock'}")
    row = make_server(name="dockered", sandbox="docker", docker_image="alpine:3")
    config = mcp_server_config(row)
    with pytest.raises(McpUnavailable, match="uses the docker sandbox but the Docker engine is not reachable"):
        mcp_manager().list_tools(config, workspace_root=tmp_path)


def test_docker_attach_frames_become_stdout_lines() -> None:
    from mcp_app.docker_runtime import lines_from_frames

    frames = [(1, b'{"jsonrpc": '), (2, b"a warning on stderr\n"), (1, b'"2.0"}\n\n{"x"'), (1, b": 1}")]
    assert list(lines_from_frames(iter(frames))) == [b'{"jsonrpc": "2.0"}', b'{"x": 1}']
