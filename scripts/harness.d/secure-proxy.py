#!/usr/bin/env python3
"""Test endpoints for `scripts/harness up --security` (stdlib only).

- HTTP on --http-port: the schema registry behind HTTP basic auth.
- HTTPS on --https-port (harness CA certificate): the registry behind basic auth
  or a bearer token (the static one, or any token the token endpoint issued).
- HTTP on --token-port: an OAuth 2 client-credentials token endpoint (POST /token)
  issuing unsecured JWTs (alg none), which the broker's OAUTHBEARER listener accepts.
  Client `expired-client` gets a token that expired a minute ago.

The first argument is the harness's -Dharness.name marker and is ignored.
"""
import argparse
import base64
import json
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ISSUED = set()
LOCK = threading.Lock()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsecured_jwt(sub, scope, lifetime):
    now = int(time.time())
    header = b64url(json.dumps({"alg": "none"}).encode())
    claims = {"sub": sub, "iat": now - 5, "exp": now + lifetime}
    if scope:
        claims["scope"] = scope
    return f"{header}.{b64url(json.dumps(claims).encode())}."


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kafka-ingest-secure-proxy"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.server.role, fmt % args))

    def reply(self, status, body, ctype="application/json", extra=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def authorized(self):
        auth = self.headers.get("Authorization", "")
        a = self.server.args
        if auth.startswith("Basic "):
            try:
                given = base64.b64decode(auth[6:]).decode()
            except ValueError:
                return False
            return given == f"{a.user}:{a.password}"
        if auth.startswith("Bearer ") and self.server.role == "https":
            token = auth[7:]
            with LOCK:
                return token == a.static_token or token in ISSUED
        return False

    def proxy(self):
        body = self.body()
        if self.server.role == "token":
            return self.token(body)
        if not self.authorized():
            return self.reply(401, {"error_code": 401, "message": "Unauthorized"},
                              extra=[("WWW-Authenticate", 'Basic realm="registry"')])
        req = urllib.request.Request(self.server.args.upstream + self.path, data=body or None,
                                     method=self.command)
        for h in ("Content-Type", "Accept"):
            if self.headers.get(h):
                req.add_header(h, self.headers[h])
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, data, ctype = r.status, r.read(), r.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as e:
            status, data, ctype = e.code, e.read(), e.headers.get("Content-Type", "application/json")
        except OSError as e:
            return self.reply(502, {"error_code": 502, "message": f"upstream: {e}"})
        self.reply(status, data, ctype)

    def token(self, body):
        if self.command != "POST" or self.path.split("?")[0] != "/token":
            return self.reply(404, {"error": "not_found"})
        form = urllib.parse.parse_qs(body.decode())
        get = lambda k: (form.get(k) or [""])[0]
        client, secret = get("client_id"), get("client_secret")
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            client, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            client, secret = urllib.parse.unquote_plus(client), urllib.parse.unquote_plus(secret)
        if get("grant_type") != "client_credentials":
            return self.reply(400, {"error": "unsupported_grant_type"})
        a = self.server.args
        if secret != a.client_secret or client not in (a.client_id, "expired-client"):
            return self.reply(401, {"error": "invalid_client"})
        lifetime = -60 if client == "expired-client" else a.token_lifetime
        token = unsecured_jwt(client, get("scope"), lifetime)
        with LOCK:
            ISSUED.add(token)
        self.reply(200, {"access_token": token, "token_type": "Bearer",
                         "expires_in": max(lifetime, 1)})

    do_GET = do_POST = do_PUT = do_DELETE = proxy


def serve(role, port, args, tls=None):
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.role, srv.args, srv.daemon_threads = role, args, True
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*tls)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    return t


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--https-port", type=int, required=True)
    p.add_argument("--token-port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--static-token", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--client-secret", required=True)
    p.add_argument("--token-lifetime", type=int, default=3600)
    args = p.parse_args([a for a in sys.argv[1:] if not a.startswith("-Dharness.name=")])
    threads = [
        serve("http", args.http_port, args),
        serve("https", args.https_port, args, (args.cert, args.key)),
        serve("token", args.token_port, args),
    ]
    print("secure-proxy ready", flush=True)
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
