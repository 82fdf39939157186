"""A real OCI registry on loopback for tests: Debian's ``docker-registry``
(CNCF distribution) with its storage in a temporary folder, anonymous, with
htpasswd Basic authentication, or with Bearer tokens from a small token
server run here (the protocol Harbor speaks), whose JWTs the registry checks
against a certificate made for the run."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

REGISTRY_BINARY = Path("/usr/bin/docker-registry")
SERVICE = "slipway-test-registry"
ISSUER = "slipway-test-token-issuer"
USERNAME = "pusher"
PASSWORD = "correct horse battery staple"


def random_file(folder: Path, name: str = "random.img", size: int = 3 * 1024 * 1024) -> Path:
    """``size`` random bytes at ``folder/name``: a blob no other test shares."""
    path = folder / name
    path.write_bytes(secrets.token_bytes(size))
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LocalRegistry:
    """One ``docker-registry serve`` process on 127.0.0.1; ``auth`` is the
    configuration's ``auth`` section (none: anonymous)."""

    root: Path
    auth: dict[str, Any] | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    def reference(self, name: str) -> str:
        return f"oci://{self.host}/{name}"

    def blob_file(self, digest: str) -> Path:
        """Where the registry keeps the bytes of blob ``digest`` on disk."""
        hex_digits = digest.removeprefix("sha256:")
        blobs = self.storage / "docker/registry/v2/blobs/sha256"
        return blobs / hex_digits[:2] / hex_digits / "data"

    def start(self, *, wait: float = 20.0) -> LocalRegistry:
        config = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.storage)}},
            "http": {"addr": self.host, "secret": secrets.token_hex(16)},
        }
        if self.auth is not None:
            config["auth"] = self.auth
        config_file = self.root / "config.yml"
        config_file.write_text(json.dumps(config))  # JSON is YAML
        log = (self.root / "registry.log").open("wb")
        self.process = subprocess.Popen(
            [str(REGISTRY_BINARY), "serve", str(config_file)], stdout=log, stderr=log
        )
        log.close()
        self._wait_until_ready(wait)
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def _wait_until_ready(self, wait: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.root / "registry.log").read_text(errors="replace")
                raise RuntimeError(f"docker-registry exited {self.process.returncode}: {log}")
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1).close()
                return
            except urllib.error.HTTPError:
                return  # 401: up, and asking for credentials
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer on {self.host} within {wait} s")


def htpasswd_auth(folder: Path) -> dict[str, Any]:
    """An ``auth`` section for Basic authentication of USERNAME/PASSWORD."""
    import bcrypt

    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4, prefix=b"2a"))
    path = folder / "htpasswd"
    path.write_text(f"{USERNAME}:{hashed.decode()}\n")
    return {"htpasswd": {"realm": "slipway-test", "path": str(path)}}


class TokenServer:
    """Docker's token protocol on 127.0.0.1: Basic credentials in, a JWT out
    granting the actions the scopes ask for. ``scopes`` records the scopes
    of each request; ``authorizations`` each Authorization header received."""

    def __init__(self, folder: Path) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.certificate_file = folder / "token-signer.pem"
        self.certificate_file.write_bytes(_self_signed(self.key))
        self.scopes: list[tuple[str, ...]] = []
        self.authorizations: list[str | None] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/token"

    def auth(self) -> dict[str, Any]:
        """The registry's ``auth`` section that trusts this server's tokens."""
        return {
            "token": {
                "realm": self.realm,
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(self.certificate_file),
            }
        }

    def start(self) -> TokenServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def token(self, subject: str, scopes: tuple[str, ...]) -> str:
        """A JWT granting every scope asked for (``repository:NAME:ACTIONS``)."""
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "iat": int(time.time()),
            "nbf": int(time.time()) - 10,
            "exp": int(time.time()) + 300,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        header = {"typ": "JWT", "alg": "ES256", "kid": _libtrust_key_id(self.key.public_key())}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self
        expected = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()

        class Handler(BaseHTTPRequestHandler):
            protocol_version: ClassVar[str] = "HTTP/1.1"  # type: ignore[misc]

            def do_GET(self) -> None:
                scopes = tuple(parse_qs(urlsplit(self.path).query).get("scope", []))
                given = self.headers.get("Authorization")
                server.scopes.append(scopes)
                server.authorizations.append(given)
                if given != expected:
                    self._send(401, {"errors": [{"code": "UNAUTHORIZED", "message": "who?"}]})
                    return
                self._send(200, {"token": server.token(USERNAME, scopes), "expires_in": 300})

            def _send(self, status: int, document: dict[str, Any]) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _libtrust_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The key id the registry derives from a trusted certificate's key: the
    first 30 bytes of the SHA-256 of its DER SubjectPublicKeyInfo in base32,
    in colon-separated groups of four."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    text = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(text[i : i + 4] for i in range(0, len(text), 4))


def _self_signed(key: ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "slipway test token signer")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)
