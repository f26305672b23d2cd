"""The file channel over SFTP (paramiko) against a real SFTP server on loopback: the released file reaches
the factor's folder through ``.part`` + rename, a resend after an ambiguous failure looks the file up
first and never writes it twice, a wrong host key or password stops before anything is sent."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("paramiko")

from connector.channels import make_channel
from connector.channels.sftp import SftpError, SftpTarget
from connector.errors import ConfigError, StopAndAsk
from connector.factors.outbox import deliver_batch
from tests.channels.sample import params_for
from tests.channels.sftp_server import SftpServer
from tests.channels.test_engine_channels import _claim_all


class Secret:
    def __init__(self, value: str) -> None:
        self.value = value

    def reveal(self) -> str:
        return self.value


def _profile(outbox: Path, server: SftpServer, *, password: str | None = None, host_key: str | None = None):
    return SimpleNamespace(name="bpce", channel="file", client_number="123456", outbox_dir=outbox, layout="bpce",
                           layout_params=params_for("bpce"), sftp_url=server.url,
                           sftp_host_key=host_key or server.host_key,
                           sftp_password=Secret(password or server.password), sftp_key=None,
                           connect_timeout=5.0, read_timeout=10.0)


def _remote(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "drop").iterdir())


def test_released_file_reaches_the_sftp_folder_once(store, tmp_path):
    _claim_all(store, "bpce")
    with SftpServer(tmp_path / "server") as server:
        channel = make_channel(_profile(tmp_path / "out", server))
        assert "SFTP sftp://cessio@127.0.0.1" in channel.probe()
        batch = store.claim_batch("bpce", "file", batch_size=50, lease_seconds=0)
        assert deliver_batch(store, channel, batch) == "sent"
        local = [p for p in (tmp_path / "out").iterdir() if p.is_file()]
        assert _remote(tmp_path / "server") == [local[0].name]  # no .part left behind
        assert (tmp_path / "server" / "drop" / local[0].name).read_bytes() == local[0].read_bytes()
        assert channel.lookup(batch) is not None
        # a second upload of the same bytes is accepted as is; other bytes under the name stop
        assert channel.sftp.upload(local[0].name, local[0].read_bytes()) == "present"
        with pytest.raises(StopAndAsk, match="other content"):
            channel.sftp.upload(local[0].name, b"tampered")


def test_an_ambiguous_upload_is_looked_up_then_finished_without_a_second_file(store, tmp_path):
    _claim_all(store, "bpce")
    with SftpServer(tmp_path / "server") as server:
        channel = make_channel(_profile(tmp_path / "out", server))
        server.folder_class.fail_renames = 2  # posix-rename and rename both fail on the first try
        batch = store.claim_batch("bpce", "file", batch_size=50, lease_seconds=0)
        assert deliver_batch(store, channel, batch) == "unknown"
        assert not [n for n in _remote(tmp_path / "server") if not n.startswith(".")]
        time.sleep(0.3)  # the outbox's back-off after an ambiguous outcome (0.15 s at most here)
        again = store.claim_batch("bpce", "file", batch_size=50, lease_seconds=0)
        assert again["id"] == batch["id"] and again["previous_attempts"] == 1
        assert deliver_batch(store, channel, again) == "sent"  # looked up (not there), then uploaded
        finals = [n for n in _remote(tmp_path / "server") if not n.startswith(".")]
        assert len(finals) == 1
        assert {r["state"] for r in store.assignment_rows("bpce")} == {"sent"}


def test_wrong_host_key_or_password_stops_before_sending(tmp_path):
    with SftpServer(tmp_path / "server") as server, SftpServer(tmp_path / "other") as other:
        wrong_key = SftpTarget(server.url, host_key=other.host_key, password=Secret(server.password))
        with pytest.raises(StopAndAsk, match="host key"):
            wrong_key.upload("F.txt", b"x")
        wrong_password = SftpTarget(server.url, host_key=server.host_key, password=Secret("nope"))
        with pytest.raises(StopAndAsk, match="authentication"):
            wrong_password.upload("F.txt", b"x")
        assert _remote(tmp_path / "server") == []
    with pytest.raises(SftpError, match="cannot connect"):
        SftpTarget(server.url, host_key=server.host_key, password=Secret("pw"), connect_timeout=1).probe()
    with pytest.raises(ConfigError, match="host key"):
        SftpTarget("sftp://u@h/x", host_key=None, password=Secret("pw"))
