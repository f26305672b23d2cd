"""Bordereau files to the factor's SFTP server (paramiko), after they are released to the local outbox.

Reads: the file bytes the file channel released (the outbox copy stays the record). Writes: the same
bytes on the server, uploaded as ``.<name>.part`` and renamed to ``<name>`` (POSIX rename where the
server offers it), so the factor never sees a half-written file (docs reliability §1, A10). Nothing is
trusted on first use: the server's host key is given in the config (``sftp_host_key``, as in a
``known_hosts`` line: ``ssh-ed25519 AAAA...``) and any other key is refused.

Idempotent: a file already on the server with the same bytes is accepted as is (a crash after the
rename); one with other bytes stops for a person. Every paramiko or socket failure becomes
:class:`SftpError` (retry later); the file channel treats it as ambiguous and looks the file up on the
server before it uploads again.
"""

from __future__ import annotations

import base64
import hashlib
import io
import posixpath
from typing import Any
from urllib.parse import unquote, urlsplit

from connector.errors import ConfigError, RetryLater, StopAndAsk


class SftpError(RetryLater):
    """The SFTP server could not be reached or refused an operation; try again next run."""


def _paramiko() -> Any:
    try:
        import paramiko
    except ImportError:
        from connector.errors import NotBuiltYet

        raise NotBuiltYet("SFTP needs paramiko: pip install 'cessio[sftp]'") from None
    return paramiko


class SftpTarget:
    """One factor's SFTP drop folder. Opens a connection per use (a run releases a few files)."""

    def __init__(self, url: str, *, host_key: str | None, password: Any = None, key_file: str | None = None,
                 connect_timeout: float = 5.0, read_timeout: float = 30.0, factor: str = "factor") -> None:
        parts = urlsplit(url)
        if parts.scheme != "sftp" or not parts.hostname or not parts.username:
            raise ConfigError("expected sftp://USER@HOST[:PORT]/FOLDER", key=f"factors.{factor}.sftp_url")
        if not host_key or len(host_key.split()) < 2:
            raise ConfigError('the factor\'s SSH host key is required, as "TYPE BASE64" (a known_hosts line '
                              'without the host name); keys are never trusted on first use',
                              key=f"factors.{factor}.sftp_host_key")
        if password is None and key_file is None:
            raise ConfigError("SFTP needs sftp_password or sftp_key", key=f"factors.{factor}.sftp_password")
        self.host, self.port = parts.hostname, parts.port or 22
        self.user = unquote(parts.username)
        self.folder = unquote(parts.path) or "."
        self.host_key_type, self.host_key_data = host_key.split()[:2]
        self.password, self.key_file = password, key_file
        self.timeouts = (connect_timeout, read_timeout)
        self.factor = factor

    def __repr__(self) -> str:  # never the password
        return f"SftpTarget(sftp://{self.user}@{self.host}:{self.port}{self.folder})"

    def _where(self) -> str:
        return f"sftp://{self.user}@{self.host}:{self.port}{self.folder}"

    def _open(self) -> tuple[Any, Any]:
        paramiko = _paramiko()
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            key = paramiko.PKey.from_type_string(self.host_key_type, base64.b64decode(self.host_key_data))
        except (ValueError, TypeError, paramiko.SSHException) as exc:
            raise ConfigError(f"cannot read the SSH host key: {exc}", key=f"factors.{self.factor}.sftp_host_key") \
                from None
        name = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        client.get_host_keys().add(name, key.get_name(), key)
        connect, read = self.timeouts
        try:
            client.connect(self.host, self.port, username=self.user,
                           password=self.password.reveal() if self.password is not None else None,
                           key_filename=self.key_file, timeout=connect, banner_timeout=connect,
                           auth_timeout=connect, allow_agent=False, look_for_keys=False)
            sftp = client.open_sftp()
            sftp.get_channel().settimeout(read)
        except paramiko.BadHostKeyException:
            client.close()
            raise StopAndAsk(f"{self._where()}: the server's host key is not the configured one; refusing to "
                             "send anything (check sftp_host_key with the factor)") from None
        except paramiko.AuthenticationException:
            client.close()
            raise StopAndAsk(f"{self._where()}: authentication refused; check the SFTP credentials") from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            client.close()
            raise SftpError(f"{self._where()}: cannot connect ({type(exc).__name__}: {exc})") from None
        return client, sftp

    def _path(self, name: str) -> str:
        if "/" in name or name.startswith("."):
            raise StopAndAsk(f"refusing remote file name {name!r}")
        return posixpath.join(self.folder, name)

    @staticmethod
    def _remote_digest(sftp: Any, path: str) -> str | None:
        try:
            with sftp.open(path, "rb") as handle:
                return hashlib.sha256(handle.read()).hexdigest()
        except FileNotFoundError:
            return None

    def upload(self, name: str, content: bytes) -> str:
        """Put ``content`` as ``name``: ``"uploaded"``, or ``"present"`` when the same bytes are there."""
        paramiko = _paramiko()
        client, sftp = self._open()
        final, part = self._path(name), posixpath.join(self.folder, f".{name}.part")
        try:
            present = self._remote_digest(sftp, final)
            if present is not None:
                if present == hashlib.sha256(content).hexdigest():
                    return "present"
                raise StopAndAsk(f"{self._where()}/{name} exists with other content; refusing to overwrite it")
            sftp.putfo(io.BytesIO(content), part, file_size=len(content), confirm=True)
            try:
                sftp.posix_rename(part, final)
            except OSError:  # a server without the posix-rename extension
                sftp.rename(part, final)
            return "uploaded"
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise SftpError(f"{self._where()}/{name}: upload failed ({type(exc).__name__}: {exc})") from None
        finally:
            sftp.close()
            client.close()

    def has(self, name: str, content: bytes) -> bool:
        """Whether the server holds ``name`` with these bytes (the file channel's look-up)."""
        paramiko = _paramiko()
        client, sftp = self._open()
        try:
            return self._remote_digest(sftp, self._path(name)) == hashlib.sha256(content).hexdigest()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise SftpError(f"{self._where()}/{name}: look-up failed ({type(exc).__name__}: {exc})") from None
        finally:
            sftp.close()
            client.close()

    def probe(self) -> str:
        """Connect, authenticate against the pinned host key and list the folder (no side effect)."""
        paramiko = _paramiko()
        client, sftp = self._open()
        try:
            sftp.listdir(self.folder)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise SftpError(f"{self._where()}: cannot list the folder ({type(exc).__name__})") from None
        finally:
            sftp.close()
            client.close()
        return f"SFTP {self._where()} reachable"


def target_for(profile: Any) -> SftpTarget | None:
    """The factor's SFTP target when ``sftp_url`` is configured, else None (local outbox only)."""
    url = getattr(profile, "sftp_url", None)
    if not url:
        return None
    return SftpTarget(url, host_key=getattr(profile, "sftp_host_key", None),
                      password=getattr(profile, "sftp_password", None),
                      key_file=getattr(profile, "sftp_key", None),
                      connect_timeout=float(getattr(profile, "connect_timeout", 5.0)),
                      read_timeout=float(getattr(profile, "read_timeout", 30.0)), factor=profile.name)
