"""A real SFTP server on loopback for the file channel's tests: paramiko's server side (SSH transport,
password auth, the SFTP subsystem) over a TCP socket, serving one local folder. No OpenSSH server runs
here, so this is the server the SFTP transport is tested against."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path

import paramiko
from paramiko import SFTP_FAILURE, SFTP_OK, SFTPAttributes, SFTPHandle, SFTPServer, SFTPServerInterface


class _Auth(paramiko.ServerInterface):
    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user, password

    def check_auth_password(self, username: str, password: str) -> int:
        ok = (username, password) == (self.user, self.password)
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def get_allowed_auths(self, username: str) -> str:
        return "password"

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class _Handle(SFTPHandle):
    def stat(self):
        try:
            return SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)


class _Folder(SFTPServerInterface):
    ROOT: Path = Path(".")
    fail_renames = 0  # the next N renames fail (a server-side hiccup after the upload)

    def _real(self, path: str) -> Path:
        return self.ROOT / self.canonicalize(path).lstrip("/")

    def list_folder(self, path):
        try:
            return [SFTPAttributes.from_stat(os.stat(p), p.name) for p in self._real(path).iterdir()]
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)

    def stat(self, path):
        try:
            return SFTPAttributes.from_stat(os.stat(self._real(path)))
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)

    lstat = stat

    def open(self, path, flags, attr):
        real = self._real(path)
        try:
            fd = os.open(real, flags, 0o644)
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)
        mode = "wb" if flags & os.O_WRONLY else ("r+b" if flags & os.O_RDWR else "rb")
        handle = _Handle(flags)
        file = os.fdopen(fd, mode)
        handle.readfile = handle.writefile = file
        return handle

    def _rename(self, old, new):
        if type(self).fail_renames > 0:
            type(self).fail_renames -= 1
            return SFTP_FAILURE
        try:
            os.replace(self._real(old), self._real(new))
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)
        return SFTP_OK

    def rename(self, oldpath, newpath):
        if self._real(newpath).exists():
            return SFTP_FAILURE
        return self._rename(oldpath, newpath)

    def posix_rename(self, oldpath, newpath):
        return self._rename(oldpath, newpath)

    def remove(self, path):
        try:
            os.remove(self._real(path))
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)
        return SFTP_OK


class SftpServer:
    """``with SftpServer(folder) as server:`` — ``server.url``, ``server.host_key`` (known_hosts form)."""

    def __init__(self, root: Path, *, user: str = "cessio", password: str = "pw-not-a-secret") -> None:
        self.root, self.user, self.password = root, user, password
        self.key = paramiko.RSAKey.generate(2048)
        self.host_key = f"{self.key.get_name()} {self.key.get_base64()}"
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.url = f"sftp://{user}@127.0.0.1:{self.port}/drop"
        self.connections = 0
        self.transports: list[paramiko.Transport] = []
        self.channels: list[paramiko.Channel] = []
        self.stopped = threading.Event()
        folder = type("Folder", (_Folder,), {"ROOT": root})
        self.folder_class = folder
        (root / "drop").mkdir(parents=True, exist_ok=True)

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            transport = paramiko.Transport(conn)
            transport.add_server_key(self.key)
            transport.set_subsystem_handler("sftp", SFTPServer, self.folder_class)
            try:
                transport.start_server(server=_Auth(self.user, self.password))
            except (paramiko.SSHException, EOFError, OSError):
                transport.close()
                continue
            self.transports.append(transport)
            threading.Thread(target=self._keep, args=(transport,), daemon=True).start()

    def _keep(self, transport: paramiko.Transport) -> None:
        channel = transport.accept(10)  # kept referenced: a collected channel closes itself
        if channel is not None:
            self.channels.append(channel)

    def __enter__(self) -> SftpServer:
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked in the serving thread
        self.sock.close()
        for transport in self.transports:
            transport.close()
